"""Loading checkpoints safely, and remapping ones whose key names differ.

Checkpoints are read with ``torch.load(..., weights_only=True)``: tensors and
plain containers only, never arbitrary pickled objects.
"""

import os

import torch

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net")
_PREFIXES = ("module.", "model.", "backbone.", "body.", "_orig_mod.")


def read_checkpoint(path):
    """Read a state dict from ``path`` (tensors only) on the CPU."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path!r} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ...
        raise ValueError(
            f"could not read weights from {path!r} as a tensors-only checkpoint "
            f"(torch.load with weights_only=True): {exc}"
        ) from exc
    for key in _WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(
            f"{path!r} does not hold a state dict (a mapping of names to tensors)."
        )
    return dict(state)


def _strip_prefixes(state):
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _comparable(items):
    return [(k, v) for k, v in items if not k.endswith("num_batches_tracked")]


def remap_by_order(state, target_state, *, source="checkpoint"):
    """Rename the tensors of ``state`` to the keys of ``target_state`` by order.

    Both are walked in order, BatchNorm ``num_batches_tracked`` counters aside;
    every pair must agree in shape, and the counts must agree. Any mismatch is
    refused with an error that names the first disagreeing pair.

    Returns
    -------
    remapped : dict
        ``state``'s values under ``target_state``'s names.
    """
    src = _comparable(state.items())
    dst = _comparable(target_state.items())
    if len(src) != len(dst):
        raise ValueError(
            f"cannot map {source} onto the architecture: it holds {len(src)} tensors "
            f"and the architecture {len(dst)} (BatchNorm counters aside)."
        )
    remapped = {}
    for position, ((src_key, value), (dst_key, expected)) in enumerate(zip(src, dst)):
        if tuple(value.shape) != tuple(expected.shape):
            raise ValueError(
                f"cannot map {source} onto the architecture: tensor #{position} "
                f"{src_key!r} has shape {tuple(value.shape)} but the architecture's "
                f"#{position} {dst_key!r} has shape {tuple(expected.shape)}."
            )
        remapped[dst_key] = value
    return remapped


def load_state_into(module, state, *, source="checkpoint"):
    """Load ``state`` into ``module``: by name when the names match (after common
    wrapper prefixes such as ``module.`` are stripped), by verified order and
    shape when they do not."""
    target = module.state_dict()
    state = _strip_prefixes(state)
    wanted = {k for k in target if not k.endswith("num_batches_tracked")}
    given = {k for k in state if not k.endswith("num_batches_tracked")}
    if wanted == given:
        for key, value in state.items():
            if key in target and tuple(value.shape) != tuple(target[key].shape):
                raise ValueError(
                    f"{source}: {key!r} has shape {tuple(value.shape)}, the "
                    f"architecture expects {tuple(target[key].shape)}."
                )
    elif given & wanted and (given <= wanted or wanted <= given):
        # the same names, some missing or extra (a checkpoint saved without its
        # head, or with one the architecture lacks): no order to remap by
        missing, extra = sorted(wanted - given), sorted(given - wanted)
        if missing:
            raise ValueError(
                f"{source}: its tensors are named as the architecture's, but it lacks "
                f"{len(missing)} of them: {missing[:5]!r}. Save the whole model's "
                "state dict (model.state_dict(), head included), or load what you "
                "have into the module yourself and give the module as model=.")
        raise ValueError(
            f"{source}: its tensors are named as the architecture's, but it holds "
            f"{len(extra)} the architecture lacks: {extra[:5]!r}. Drop them from the "
            "state dict (an auxiliary head, an optimizer's state) and save it again.")
    else:
        state = remap_by_order(state, target, source=source)
    module.load_state_dict(state, strict=False)
    return module
