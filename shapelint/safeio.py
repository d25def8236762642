"""Reading inputs that may be hostile and writing outputs that must not be lost.

Every file shapelint reads from the command line (models, configs,
baselines) goes through :func:`read_regular`: it opens without blocking (a
FIFO named ``baseline.json`` must not hang the run), refuses anything that is
not a regular file (``/dev/zero`` would read forever) and never reads more
than a limit.  Every file it writes goes through :func:`atomic_write`: a temp
file in the destination folder, fsync, ``os.replace``, so an interrupted run
leaves the old file whole.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write(d / "a.txt", b"hello")
>>> read_regular(d / "a.txt", limit=10)
b'hello'
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["Protected", "UnsafeFile", "atomic_target", "atomic_write", "is_same_file", "read_regular", "replace_file",
           "replace_from"]


class UnsafeFile(OSError):
    """A path that is not a regular file, or a file over the size limit; ``str`` is one line."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` before the first
    read, so a FIFO, a device or a folder is refused without blocking, and
    at most ``limit + 1`` bytes are ever read.

    Raises
    ------
    FileNotFoundError, PermissionError, OSError
        as ``open`` does (a dangling symlink is ``FileNotFoundError``);
    UnsafeFile
        not a regular file, or larger than ``limit``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(os.fspath(path), flags)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeFile(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(errno.EINVAL, "not a regular file (a FIFO, socket or device): refused")
        if st.st_size > limit:
            raise UnsafeFile(errno.EFBIG, f"file is {st.st_size} bytes, more than the {limit} this input may have")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # grew while being read
            raise UnsafeFile(errno.EFBIG, f"file is more than the {limit} bytes this input may have")
        return b"".join(chunks)
    finally:
        os.close(fd)


def atomic_target(path: str | os.PathLike) -> Path:
    """Where :func:`atomic_write` puts ``path``: through symlinks, so that a link stays a link."""
    return Path(os.path.realpath(os.fspath(path)))


def atomic_write(path: str | os.PathLike, data: bytes | str, encoding: str = "utf-8") -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half of one.

    A temp file in the destination folder is written, fsync'ed and renamed
    over ``path`` (symlinks followed).  A destination that exists and is not
    a regular file (``/dev/stdout``, a FIFO someone reads) is written in
    place instead: renaming over it would replace the device node.

    Raises
    ------
    OSError
        the folder is missing or not writable, the device is full; the old
        file is then left as it was and no temp file is left behind.
    """
    if isinstance(data, str):
        try:  # a file name that is not UTF-8 (b"\xff" read as "\udcff") is written as the bytes it was
            data = data.encode(encoding, "surrogateescape")
        except UnicodeEncodeError:  # any other lone surrogate (a JSON "\ud800" echoed back)
            data = data.encode(encoding, "backslashreplace")
    target = atomic_target(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", os.fspath(path))
        if stat.S_ISFIFO(st.st_mode):
            _write_fifo(target, data, path)
            return
        with open(target, "wb") as fh:
            fh.write(data)
        return
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if st is not None:
            with contextlib.suppress(OSError):
                os.chmod(tmp, stat.S_IMODE(st.st_mode))
        else:
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def replace_file(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, for files shapelint owns (cache entries): never through a link.

    A temp file in the same folder is renamed over ``path``; what ``path``
    was (a symlink to someone's file included) is replaced, never written
    through.  No fsync: a file lost in a power cut is only a cache miss, and
    an fsync per entry would cost more than the check it saves.  Concurrent
    writers of one path each rename a whole file: the last one wins.

    Raises
    ------
    OSError
        the folder is missing or not writable, the device is full; no temp
        file is left behind.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_fifo(target: Path, data: bytes, path) -> None:
    """Write into a FIFO that a process reads; one no process reads is an error, never a wait forever."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "a FIFO that no process reads (writing would block forever)", os.fspath(path)) from None
        raise
    try:
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def replace_from(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """fsync ``tmp`` (a finished file in the destination folder) and rename it over ``path``."""
    fd = os.open(os.fspath(tmp), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """``a`` and ``b`` are one file: the same path once symlinks are resolved, or hard links of one inode."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
    except (OSError, ValueError):
        pass
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


class Protected:
    """A set of files that must not be written (the inputs of a run): by resolved path and by inode.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.onnx"
    >>> _ = p.write_bytes(b"x")
    >>> p in Protected([p]), p.with_name("n.onnx") in Protected([p])
    (True, False)
    """

    def __init__(self, paths=()):
        self.real: set[str] = set()
        self.inodes: set[tuple[int, int]] = set()
        for p in paths:
            self.add(p)

    def add(self, path) -> None:
        try:
            self.real.add(os.path.realpath(path))
            st = os.stat(path)
        except (OSError, ValueError):
            return
        self.inodes.add((st.st_dev, st.st_ino))

    def __contains__(self, path) -> bool:
        try:
            if os.path.realpath(path) in self.real:
                return True
            st = os.stat(path)
        except (OSError, ValueError):
            return False
        return (st.st_dev, st.st_ino) in self.inodes
