"""A note on an exception, on every Python the package supports (a leaf).

``BaseException.add_note`` came with Python 3.11; on 3.10 the note is kept in
``__notes__`` as 3.11 keeps it (read by tests and by tools that know the
attribute), without 3.11's display under the traceback.
"""

import sys

__all__ = ["add_note"]


def add_note(exc, note):
    """Attach ``note`` to ``exc`` (``exc.add_note`` where Python has it)."""
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:
        exc.__notes__ = [*getattr(exc, "__notes__", ()), note]
