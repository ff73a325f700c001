"""Private helpers every room of sktransfer may use; nothing here is public.

* ``runtime``: :class:`BatchLoader` (raw batches to device inputs) and
  ``run_batches`` (batched inference);
* ``device``: device and precision (``device=``, ``precision=``);
* ``compile``: ``compile=``, a ``torch.compile`` wrapper for forward passes;
* ``torch_parameters``: the parameters every torch estimator shares
  (constraints, pickling of torch values);
* ``domains``: scikit-learn's ``y == -1`` and skada's ``sample_domain`` as masks;
* ``hashing``: the one digest of tensors, state dicts and cache keys;
* ``representation``: the features an estimator's ``transform`` gives, for the
  scorers;
* ``versioning``: version stamps and ``InconsistentVersionWarning``;
* ``hints``: the type hints of the estimators' signatures;
* ``files``: writing a file that replaces another only once complete;
* ``seeding``: torch's global generator, seeded for a block, one thread at a time.
"""
