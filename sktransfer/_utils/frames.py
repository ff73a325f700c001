"""Data frames from other libraries, brought into memory (no torch here: the
scorers of ``sktransfer.metrics`` import it)."""


def in_memory(X):
    """A dask DataFrame or Series computed into its pandas form, as scikit-learn's
    checks compute a dask collection (with ``np.asarray``); anything else as it
    is. (Out-of-core data goes through ``map_partitions``: see
    ``docs/distributed.md``.)"""
    kind = type(X)
    if (kind.__module__.split(".")[0] in ("dask", "dask_expr")  # dask_expr: 2024.3-12
            and kind.__name__ in ("DataFrame", "Series")):
        return X.compute()
    return X
