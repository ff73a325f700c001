"""The one digest of arrays, tensors and state dicts.

Three users, one way of hashing: the feature cache keys images and
fingerprints models (:func:`digest_parts`), an extractor recognises reloaded
weights (:func:`weights_fingerprint`), and the safe file format checks its
weights (:func:`tensors_checksum`). The last two differ only in framing and
algorithm, which are fixed by what users have already saved (pickles hold
fingerprints, safe files a SHA-256): changing either would make those files
fail their checks.
"""

import hashlib

import torch


def digest_parts(*parts, digest_size=16):
    """A blake2b digest object fed with ``parts`` (bytes, memoryviews or values
    written with ``str``), each followed by a NUL byte so parts cannot run into
    each other; call ``.update`` for more, ``.hexdigest()`` for the text."""
    digest = hashlib.blake2b(digest_size=digest_size)
    for part in parts:
        digest.update(part if isinstance(part, (bytes, memoryview)) else str(part).encode())
        digest.update(b"\0")
    return digest


def bytes_digest(data, digest_size=16):
    """The blake2b digest (bytes) of ``data``: checksums and entry keys of the
    feature cache's disk files."""
    return hashlib.blake2b(data, digest_size=digest_size).digest()


def tensor_bytes(tensor):
    """The raw bytes of ``tensor`` (any dtype, any device), as a numpy uint8 view."""
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()


def _update_with_tensors(digest, named_tensors, *, with_layout):
    for name, tensor in named_tensors:
        if with_layout:
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        else:
            digest.update(name.encode())
        digest.update(tensor_bytes(tensor).tobytes())
    return digest.hexdigest()


def weights_fingerprint(module, *, replaced=None):
    """A short digest (hex) of ``module``'s state dict, to tell reloaded weights
    apart from those an estimator was fitted with; ``replaced`` (``{name:
    tensor}``) stands for entries of the state dict (weights as they were
    before something changed them in place)."""
    state = module.state_dict()
    if replaced:
        state = {**state, **replaced}
    return _update_with_tensors(hashlib.blake2b(digest_size=16), state.items(),
                                with_layout=False)


def tensors_checksum(tensors):
    """The SHA-256 (hex) of a ``{name: tensor}`` mapping: names, dtypes, shapes and
    bytes, in name order (the checksum of a safe file's weights)."""
    return _update_with_tensors(hashlib.sha256(),
                                ((name, tensors[name]) for name in sorted(tensors)),
                                with_layout=True)
