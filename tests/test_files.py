"""The writer that replaces a file only once the new one is complete
(``sktransfer/_utils/files.py``): what ``open(path, "wb")`` would do, without
ever leaving part of a file."""

import os
import stat

import pytest

from sktransfer._utils.files import replacing, write_atomic


def test_a_regular_file_is_replaced_whole_keeping_its_mode(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    write_atomic(path, b"new", durable=True)
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640
    with pytest.raises(RuntimeError), replacing(path) as temporary:
        with open(temporary, "wb") as file:
            file.write(b"par")
        raise RuntimeError  # the process stopped while writing
    assert path.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["model.bin"]  # no temporary left


def test_what_is_not_a_regular_file_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that a writer can open it
    try:
        write_atomic(fifo, b"through the pipe")
        assert os.read(reader, 100) == b"through the pipe"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a pipe, not a file
    write_atomic(os.devnull, b"nothing")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_errors_name_the_path_given(tmp_path):
    missing = tmp_path / "no" / "such" / "model.bin"
    with pytest.raises(FileNotFoundError) as error:
        write_atomic(missing, b"x")
    assert error.value.filename == str(missing)
    long_name = tmp_path / ("m" * 250)  # too long for a temporary beside it
    write_atomic(long_name, b"x")
    assert long_name.read_bytes() == b"x"


_PERMISSIONS = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("files", sys.argv[2])
files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)
root = sys.argv[1]
read_only = os.path.join(root, "read_only.bin")
with open(read_only, "wb") as file:
    file.write(b"kept")
os.chmod(read_only, 0o444)
try:
    files.write_atomic(read_only, b"x")
    sys.exit("a read-only file was replaced")
except PermissionError:
    pass
assert open(read_only, "rb").read() == b"kept"
folder = os.path.join(root, "folder")
os.mkdir(folder)
inside = os.path.join(folder, "writable.bin")
with open(inside, "wb") as file:
    file.write(b"old")
os.chmod(folder, 0o555)
files.write_atomic(inside, b"new")  # in place: no temporary can be made there
assert open(inside, "rb").read() == b"new"
os.chmod(folder, 0o755)
"""


def test_permissions_are_those_of_open():
    # A read-only file is not replaced behind its mode; a writable file in a
    # read-only folder is written as open() would. Checked as an unprivileged
    # user (root may write anything), in a folder that user can reach.
    import subprocess
    import sys
    import tempfile

    from sktransfer._utils import files

    python, user = sys.executable, {}
    if os.geteuid() == 0:  # the module alone (stdlib only), by a Python nobody may run
        python = next((candidate for candidate in ("/usr/bin/python3", "/usr/local/bin/python3")
                       if os.path.exists(candidate)), None)
        if python is None:
            pytest.skip("no system Python that an unprivileged user may run")
        user = {"user": 65534}
    with tempfile.TemporaryDirectory() as root:
        os.chmod(root, 0o777)
        result = subprocess.run([python, "-c", _PERMISSIONS, root, files.__file__],
                                capture_output=True, text=True, timeout=120, **user)
        for folder, _, _ in os.walk(root):  # root may remove what nobody made
            os.chmod(folder, 0o777)
    assert result.returncode == 0, result.stderr


def test_a_full_disk_leaves_the_file_that_was_there(tmp_path, monkeypatch):
    # Writing in place is for folders that take no new file; a full disk there
    # would first empty the file, then fail.
    import errno

    from sktransfer._utils import files

    path = tmp_path / "model.bin"
    path.write_bytes(b"kept")
    os.chmod(path, 0o600)
    real_open = os.open

    def full(name, flags, mode=0o777, **kwargs):
        if flags & os.O_EXCL:
            raise OSError(errno.ENOSPC, "No space left on device", name)
        return real_open(name, flags, mode, **kwargs)

    monkeypatch.setattr(files.os, "open", full)
    with pytest.raises(OSError, match="No space left") as error:
        write_atomic(path, b"new")
    assert error.value.filename == str(path)
    assert path.read_bytes() == b"kept"
    monkeypatch.undo()

    seen = []
    with replacing(path) as temporary:  # the copy is as private as the file
        seen.append(stat.S_IMODE(os.stat(temporary).st_mode))
        with open(temporary, "wb") as file:
            file.write(b"new")
    assert seen == [0o600] and path.read_bytes() == b"new"
