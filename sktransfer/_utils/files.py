"""Writing a file so that what was there before is never half overwritten."""

import contextlib
import os
import secrets
import stat

__all__ = ["replacing", "write_atomic"]


@contextlib.contextmanager
def replacing(path, *, durable=False):
    """The path of a new, empty temporary file beside ``path``, which replaces
    ``path`` by a rename once the block that writes it ends without an error (it
    is removed otherwise): a reader, or a process that dies while writing, sees
    the old file or the new one, never part of one.

    A symbolic link is written through, as ``open(path, "wb")`` would; a file
    that exists keeps its permissions, a new one gets those ``open`` gives (the
    umask applies). ``durable`` flushes the file to the disk before the rename
    (a saved model); a cache entry that can be recomputed skips it.
    """
    target = os.path.realpath(os.fspath(path))
    folder, name = os.path.split(target)
    temporary = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.tmp")
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield temporary
        if durable:
            fd = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_atomic(path, data, *, durable=False):
    """Write ``data`` (bytes) to ``path`` as :func:`replacing` says."""
    with replacing(path, durable=durable) as temporary:
        with os.fdopen(os.open(temporary, os.O_WRONLY | getattr(os, "O_BINARY", 0)),
                       "wb") as file:
            file.write(data)
