"""Resolving the ``device`` and ``precision`` parameters into torch objects."""

import contextlib

import torch

PRECISIONS = ("auto", "32", "bf16", "fp16")


_USE = "use 'auto', 'cpu', 'cuda', 'cuda:<index>' or 'mps'"


def device_problem(device):
    """Why ``device`` (a parameter's value) can run nothing on any machine, or
    None: not a torch device, or the meta device. A device this machine lacks
    is not a problem here (a model saved on a GPU loads on a CPU)."""
    if device == "auto":
        return None
    try:
        resolved = device if isinstance(device, torch.device) else torch.device(device)
    except (RuntimeError, TypeError):
        return f"device={device!r:.80} is not a torch device; {_USE}"
    if resolved.type == "meta":
        return (f"device={device!r} is torch's meta device, which holds no data: "
                f"nothing can be trained or predicted there; {_USE}")
    return None


def resolve_device(device):
    """Turn ``"auto"``, ``"cpu"``, ``"cuda:1"``, ``"mps"`` or a device into a
    :class:`torch.device`, refusing one that no machine can run
    (:func:`device_problem`) or that this machine does not have."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    problem = device_problem(device)
    if problem is not None:
        raise ValueError(problem + ".")
    resolved = device if isinstance(device, torch.device) else torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} asks for CUDA, but torch sees no CUDA device "
                "here; use device='auto' or 'cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: this machine has {torch.cuda.device_count()} "
                "CUDA device(s)."
            )
    if resolved.type == "mps" and not (
        hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    ):
        raise ValueError(f"device={device!r}: MPS is not available on this machine.")
    return resolved


def resolve_autocast_dtype(precision, device, *, inference=False):
    """The dtype to autocast to, or ``None`` for full float32.

    ``"auto"`` means bfloat16 on a CUDA device that supports it and float32
    elsewhere: on a CPU, autocast costs more than it saves for most CNNs.
    ``"fp16"`` needs a GPU to train; for ``inference`` (predictions, features)
    on a CPU it is float32, so that a model fitted on a GPU in fp16 predicts
    where there is none.
    """
    if precision == "32":
        return None
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu" and inference:
            return None
        if device.type == "cpu":
            raise ValueError(
                "precision='fp16' needs a GPU; on the CPU use 'bf16' or '32'."
            )
        return torch.float16
    raise ValueError(f"precision={precision!r} is not one of {PRECISIONS}.")


def autocast(device, dtype):
    """An autocast context for ``dtype``, or a no-op one when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
