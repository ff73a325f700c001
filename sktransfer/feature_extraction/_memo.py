"""Loaded backbones, shared by the extractors of one process."""

import threading
from collections import OrderedDict


class _BackboneMemo:
    """The last few backbones loaded in this process, by what rebuilds them.

    An extractor never trains, and never changes, its backbone (frozen, eval mode),
    so extractors that would load the same network can share one module: clones
    fitted by model selection, and unpickled copies (a dask worker receives the
    estimator with each task). Each user moves it to its device before a forward
    pass, as it would its own module.
    """

    def __init__(self, max_entries=4):
        self.max_entries = max_entries
        self._entries = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, build, *, expected=None):
        """``(module, fingerprint)`` for ``key``: remembered, or ``build()`` (which
        returns that pair). With ``expected``, a remembered module is used only when
        its fingerprint is that one, and a build that does not match is returned
        but not remembered (the caller refuses it)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (expected is None or entry[1] == expected):
                self._entries.move_to_end(key)
                return entry
            entry = build()
            if expected is None or entry[1] == expected:
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            return entry

    def clear(self):
        with self._lock:
            self._entries.clear()


BACKBONES = _BackboneMemo()


