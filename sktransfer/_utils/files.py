"""Writing a file so that what was there before is never half overwritten."""

import contextlib
import errno
import os
import secrets
import stat

__all__ = ["replacing", "write_atomic"]

# Why a temporary file beside the target could not be made, where writing the
# target in place still may (a read-only folder, a name too long to extend).
_IN_PLACE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG}


@contextlib.contextmanager
def replacing(path, *, durable=False):
    """A path to write the new content of ``path`` to.

    When ``path`` is missing or a regular file, that is a new temporary file
    beside it, which replaces ``path`` by a rename once the block ends without an
    error (it is removed otherwise): a reader, or a process that dies while
    writing, sees the old file or the new one, never part of one. A symbolic
    link is written through, as ``open(path, "wb")`` would; the file keeps its
    permission bits (not its owner, nor other hard links to it: the new file is
    another inode), a new one gets those ``open`` gives (the umask applies).
    ``durable`` flushes the file to the disk before the rename (a saved model,
    a checkpoint); a cache entry that can be recomputed skips it.

    Anything else at ``path`` (a device, a named pipe), a file this process may
    not write, and a folder where no temporary file can be made (read-only, or a
    name too long to add to) are written in place, as ``open(path, "wb")`` does,
    and fail as it would, naming ``path``.
    """
    target = os.path.realpath(os.fspath(path))
    folder, name = os.path.split(target)
    try:
        status = os.stat(target)
    except FileNotFoundError:
        status = None
    temporary = None
    if status is None or (stat.S_ISREG(status.st_mode) and os.access(target, os.W_OK)):
        candidate = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.tmp")
        # the file's own mode from the start: a private file is never readable
        # by others while its copy is written
        mode = 0o666 if status is None else stat.S_IMODE(status.st_mode)
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
            temporary = candidate
        except OSError as exc:
            # Only where open(path, "wb") may still work: a folder that takes
            # no new file, a name too long to add to. A full disk, a quota, an
            # I/O error must not empty the file that is there.
            if exc.errno not in _IN_PLACE:
                raise type(exc)(exc.errno, exc.strerror, os.fspath(path)) from exc
    if temporary is None:
        yield os.fspath(path)
        return
    try:
        yield temporary
        if durable:
            fd = os.open(temporary, os.O_WRONLY)  # Windows flushes writable handles only
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if status is not None:
            os.chmod(temporary, stat.S_IMODE(status.st_mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_atomic(path, data, *, durable=False):
    """Write ``data`` (bytes) to ``path`` as :func:`replacing` says."""
    with replacing(path, durable=durable) as destination:
        with open(destination, "wb") as file:
            file.write(data)
