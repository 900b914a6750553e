# SPDX-License-Identifier: MIT
"""Appending one record to the log: the whole line in one write, or nothing the next writer could glue
onto.

Shim writers take an advisory lock on the log around "is the last line finished?" and the write: without
it, a record still being written by another shim looks like a killed writer's fragment and the next record
starts with a needless newline (a blank line, which Filebeat reports as a JSON error). Only the service
user and root can open the log, so no caller can take the lock; and the wait for it is bounded, after
which the record is written anyway: a stuck writer costs at most a blank line, never a record.
"""

import os
import stat
import time

try:
    # The C module behind signal, without signal.py's enum import (start-up cost).
    import _signal as signal
except ImportError:
    import signal

_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
MODE = 0o640
# Room beyond the line itself: a partly used last block, and block-map or extent metadata.
_SPACE_MARGIN = 1 << 16
# How long a writer waits for the lock before writing without it: the bound on what a writer stopped
# while holding it (SIGSTOP, which cannot be held back) costs the others.
_LOCK_WAIT = 2.0
# Signals a caller, a terminal or an operator sends to stop us: held back while a record is being
# written, so that a record is never left half-written between two write calls and no writer is stopped
# (SIGTSTP and friends) while holding the lock. docs/record.md says what each does before and after.
HELD_SIGNALS = [
    getattr(signal, name)
    for name in ("SIGHUP", "SIGINT", "SIGTERM", "SIGQUIT", "SIGALRM", "SIGTSTP", "SIGTTIN", "SIGTTOU")
]


def ignore_file_size_signal():
    """A write past RLIMIT_FSIZE must fail with EFBIG, not kill the process before it can fall back.
    Process-wide (signal.signal works only in the main thread): each entry point calls it at start-up."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def hold_signals():
    """Block HELD_SIGNALS (they stay pending); returns the mask to restore."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)


def restore_signals(mask):
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


class AppendError(Exception):
    """The record is not in the log (and no fragment of it is glued to anything)."""


def _file_size_limit():
    """The file size limit after raising the soft limit to the hard one; None if unlimited."""
    import resource  # noqa: PLC0415 - one of the few modules only the log append needs

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass
    return None if soft == resource.RLIM_INFINITY else soft


def _check_room(fd, size, needed):
    vfs = os.fstatvfs(fd)
    free = vfs.f_bavail * vfs.f_frsize
    if free < needed + _SPACE_MARGIN:
        raise AppendError(f"not enough free space ({free} bytes free, {needed} needed)")
    limit = _file_size_limit()
    if limit is not None and size + needed > limit:
        raise AppendError(
            f"the record would take the log past the file size limit (RLIMIT_FSIZE {limit} bytes)"
        )


def _lock(fd):
    """Take the writers' lock within _LOCK_WAIT seconds; False when it could not be had."""
    import fcntl  # noqa: PLC0415 - only the log append needs it

    deadline = time.monotonic() + _LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)


def _open(path):
    try:
        return os.open(path, _FLAGS, MODE)
    except OSError as exc:
        raise AppendError(f"cannot open {path}: {exc.strerror or exc}") from None


def append(path, line):
    """Append `line` (bytes ending in a newline) to the log at `path`, or raise AppendError."""
    fd = _open(path)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AppendError(f"{path} is not a regular file")
        # The lock is released when fd is closed (below), or when a killed writer's fd is.
        if _lock(fd):
            info = os.fstat(fd)
        # A writer killed mid-write may have left a fragment: start on a line of our own.
        if info.st_size > 0 and os.pread(fd, 1, info.st_size - 1) != b"\n":
            line = b"\n" + line
        _check_room(fd, info.st_size, len(line))
        old_mask = hold_signals()
        try:
            _write_all(fd, line, path)
        finally:
            restore_signals(old_mask)
    except OSError as exc:
        raise AppendError(f"cannot append to {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _write_all(fd, line, path):
    done = 0
    view = memoryview(line)
    try:
        while done < len(line):
            written = os.write(fd, view[done:])
            if written <= 0:
                raise AppendError(f"cannot append to {path}: the write made no progress")
            done += written
    except (OSError, AppendError) as exc:
        note = ""
        if done:
            note = "; fragment ended with a newline" if _terminate_fragment(fd) else "; fragment left open"
        why = str(exc) if isinstance(exc, AppendError) else f"cannot append to {path}: {exc.strerror or exc}"
        raise AppendError(f"{why} (after {done} of {len(line)} bytes{note})") from None


def _terminate_fragment(fd):
    """End a partial record with a newline so that the next record starts on its own line.

    If even that fails, the next writer sees the missing newline and starts with one.
    """
    try:
        return os.write(fd, b"\n") == 1
    except OSError:
        return False
