# SPDX-License-Identifier: MIT
"""The append: whole lines only, never glued to a fragment, refused before it could fail half-way."""

import errno
import os
import stat
import subprocess

import pytest
from sendmail_shim import logwriter
from shimtest import CRON_MESSAGE, ENTRY, PYTHON


def test_creates_the_log_with_a_restrictive_mode(tmp_path):
    log = tmp_path / "mail.ndjson"
    old = os.umask(0)
    try:
        logwriter.append(str(log), b'{"a":1}\n')
    finally:
        os.umask(old)
    logwriter.append(str(log), b'{"a":2}\n')
    assert log.read_bytes() == b'{"a":1}\n{"a":2}\n'
    assert stat.S_IMODE(log.stat().st_mode) == 0o640


def test_a_fragment_left_by_a_killed_writer_is_not_glued_onto(tmp_path):
    log = tmp_path / "mail.ndjson"
    log.write_bytes(b'{"complete":1}\n{"killed mid-wr')
    logwriter.append(str(log), b'{"a":2}\n')
    assert log.read_bytes().splitlines()[-1] == b'{"a":2}'


def test_refuses_a_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    (tmp_path / "mail.ndjson").symlink_to(target)
    with pytest.raises(logwriter.AppendError):
        logwriter.append(str(tmp_path / "mail.ndjson"), b"{}\n")
    assert target.read_bytes() == b""


def test_refuses_what_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(logwriter.AppendError, match="not a regular file"):
        logwriter.append(str(fifo), b"{}\n")


def test_missing_directory_is_not_created(tmp_path):
    with pytest.raises(logwriter.AppendError, match="No such file"):
        logwriter.append(str(tmp_path / "absent" / "mail.ndjson"), b"{}\n")
    assert not (tmp_path / "absent").exists()


def test_full_filesystem_is_detected_before_writing(tmp_path, monkeypatch):
    log = tmp_path / "mail.ndjson"
    real = os.fstatvfs

    class Full:
        def __init__(self, st):
            self.f_frsize = st.f_frsize
            self.f_bavail = 1

    monkeypatch.setattr(logwriter.os, "fstatvfs", lambda fd: Full(real(fd)))
    with pytest.raises(logwriter.AppendError, match="not enough free space"):
        logwriter.append(str(log), b"{}\n")
    assert log.read_bytes() == b""


def test_short_write_leaves_a_terminated_fragment(tmp_path, monkeypatch):
    log = tmp_path / "mail.ndjson"
    real_write = os.write
    calls = []

    def short_then_enospc(fd, data):
        calls.append(bytes(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:5]))
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(logwriter.os, "write", short_then_enospc)
    with pytest.raises(logwriter.AppendError, match="No space left"):
        logwriter.append(str(log), b'{"record":"long"}\n')
    # The remainder was retried once after the short write; then the fragment got its newline.
    assert calls[1] == b'ord":"long"}\n'
    assert log.read_bytes() == b'{"rec\n'
    monkeypatch.setattr(logwriter.os, "write", real_write)
    logwriter.append(str(log), b'{"next":1}\n')
    assert log.read_bytes().splitlines()[-1] == b'{"next":1}'


def _run_under_file_size_limit(shim, soft, hard):
    """The shim as the launcher runs it, started by a caller that set RLIMIT_FSIZE to (soft, hard)."""
    code = (
        "import resource, subprocess, sys\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({soft}, {hard}))\n"
        "sys.exit(subprocess.run(sys.argv[1:], input=sys.stdin.buffer.read()).returncode)\n"
    )
    return subprocess.run(
        # -B: under a tiny RLIMIT_FSIZE Python 3.11 would install truncated .pyc files for later runs.
        [PYTHON, "-c", code, PYTHON, "-B", "-I", "-S", str(ENTRY), "-i", "root"],
        input=CRON_MESSAGE,
        capture_output=True,
        env=shim.env(),
    )


@pytest.mark.exec_only(reason="the caller's RLIMIT_FSIZE binds the exec'd shim, not the recorder")
def test_file_size_limit_is_checked_and_sigxfsz_cannot_kill(shim):
    """A tiny RLIMIT_FSIZE (soft = hard, so it cannot be raised): the record goes to syslog, exit 75."""
    shim.log.write_bytes(b"")
    result = _run_under_file_size_limit(shim, 100, 100)
    assert result.returncode == 75
    assert b"RLIMIT_FSIZE" in result.stderr
    assert shim.log.read_bytes() == b""
    assert shim.syslog.record()["message"] == CRON_MESSAGE.decode()


@pytest.mark.exec_only(reason="the caller's RLIMIT_FSIZE binds the exec'd shim, not the recorder")
def test_soft_file_size_limit_is_raised_to_the_hard_one(shim):
    result = _run_under_file_size_limit(shim, 100, "resource.RLIM_INFINITY")
    assert result.returncode == 0, result.stderr
    assert shim.record()["message"] == CRON_MESSAGE.decode()


@pytest.mark.root
def test_real_full_tmpfs(shim, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        shim.configure(log_path=str(mnt / "mail.ndjson"))
        result = shim.run("-i", "root", stdin=b"Subject: big\n\n" + b"x" * 200_000)
        assert result.returncode == 75
        assert b"not enough free space" in result.stderr
        content = (mnt / "mail.ndjson").read_bytes()
        assert content == b"" or content.endswith(b"\n")
        assert shim.syslog.record()["sendmail_shim"]["message"]["bytes"] == 200_014
    finally:
        subprocess.run(["umount", str(mnt)])
