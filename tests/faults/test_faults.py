# SPDX-License-Identifier: MIT
"""Faults the shim must survive with nothing lost (issue 8).

Each test breaks one thing under the shim (its log filesystem, permissions, rotation, the caller's
limits and fds, a kill in mid-write, heavy concurrency) and then checks both halves of "nothing lost":
every message the shim accepted is whole somewhere (the log, or the syslog fallback after exit 75), and
the log holds only whole strict-JSON lines that a reader such as Filebeat can take one by one.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import re
import shutil
import subprocess
import threading
import time
from collections import Counter

import pytest
from faults_support import (
    assert_kept_whole,
    burst_while,
    message,
    token_of,
)
from shimtest import EX_TEMPFAIL, BadLog, parse_record, raw_lines, read_log

# The caller's fds 1 and 2 closed, as a daemon that closed them would run sendmail.
CLOSED_STDOUT_STDERR = ("sh", "-c", 'exec "$@" >&- 2>&-', "sh")
SMTP_DIALOGUE = (
    b"EHLO client.example\r\nMAIL FROM:<app@example.org>\r\nRCPT TO:<ops@example.org>\r\nDATA\r\n"
    b"Subject: Cron <user@host> job sst-smtp-closed\r\n\r\nhello\r\n.\r\nQUIT\r\n"
)
TOKEN = re.compile(r"sst-[a-z]+(?:-\d+)?")


def subjects(records):
    return [token_of(r, TOKEN) for r in records]


def _fill(directory):
    """Take every free block of the filesystem under `directory`."""
    with open(directory / "filler", "wb", buffering=0) as f, pytest.raises(OSError) as full:
        while True:
            f.write(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC


@pytest.mark.root
def test_full_log_filesystem_exits_75_and_keeps_the_record_in_syslog(shim, syslog, tmpfs):
    shim.configure(log_path=tmpfs / "mail.ndjson")
    assert shim.run(stdin=message("sst-before")).returncode == 0
    _fill(tmpfs)
    data = message("sst-full", 16 << 10)  # several syslog parts, to reassemble
    proc = shim.run(stdin=data)
    assert proc.returncode == EX_TEMPFAIL, proc.stderr
    record = syslog.record_with("sst-full")
    assert_kept_whole(record, data)
    assert record["event"]["id"].encode() in proc.stderr
    assert subjects(read_log(shim.log)) == ["sst-before"]


def _unwritable_dir(shim):
    shim.log.parent.chmod(0o555)


def _unwritable_file(shim):
    shim.log.write_bytes(b"")
    os.chown(shim.log, shim.uid, shim.gid)
    shim.log.chmod(0o444)


def _symlink(shim):
    # A target the runner could write: the refusal must come from the symlink, not from permissions.
    target = shim.log.parent / "elsewhere"
    target.write_bytes(b"")
    os.chown(target, shim.uid, shim.gid)
    shim.log.symlink_to(target)
    return target


@pytest.mark.parametrize("breakage", [_unwritable_dir, _unwritable_file, _symlink])
def test_unusable_log_path_exits_75_and_keeps_the_record_in_syslog(shim, syslog, breakage):
    target = breakage(shim)
    data = message("sst-unusable", 8 << 10)
    proc = shim.run(stdin=data)
    assert proc.returncode == EX_TEMPFAIL, proc.stderr
    assert_kept_whole(syslog.record_with("sst-unusable"), data)
    assert raw_lines(shim.log) == []
    if target is not None:
        assert shim.log.is_symlink()
        assert target.read_bytes() == b""


def test_unusable_log_with_closed_stderr_still_reaches_syslog(shim, syslog):
    shim.log.parent.chmod(0o555)
    data = message("sst-quiet")
    assert shim.run(wrap=CLOSED_STDOUT_STDERR, stdin=data).returncode == EX_TEMPFAIL
    assert_kept_whole(syslog.record_with("sst-quiet"), data)


@pytest.mark.skipif(
    shutil.which("logrotate") is None, reason="needs logrotate (scripts/bootstrap.sh installs it)"
)
def test_forced_rotation_during_a_1000_message_burst_loses_nothing(shim, workdir):
    # As the role's logrotate.j2 rotates: as the log's owner, rename, then create a new file. Without its
    # compress: at a rotation every 0.3 s, a shim still appending to the renamed file would outlive the
    # delaycompress cycle that protects it daily.
    if os.geteuid() == 0:
        user_group = f"{pwd.getpwuid(shim.uid).pw_name} {grp.getgrgid(shim.gid).gr_name}"
        owner = f"  su {user_group}\n  create 0640 {user_group}\n"
    else:
        owner = "  create 0640\n"
    conf = workdir / "logrotate.conf"
    conf.write_text(f"{shim.log} {{\n{owner}  rotate 100000\n  missingok\n  nocompress\n}}\n")
    state = workdir / "logrotate.state"
    rotations = []

    def rotate():
        proc = subprocess.run(
            ["logrotate", "-f", "-s", str(state), str(conf)], capture_output=True, text=True
        )
        rotations.append(proc)
        time.sleep(0.3)

    statuses = burst_while(shim, "sst-rot", 1000, rotate)
    assert all(proc.returncode == 0 for proc in rotations), rotations[-1].stderr
    assert len(rotations) >= 10, "logrotate ran too few times to test anything"
    assert statuses == [0] * 1000
    files = sorted(shim.log.parent.glob(shim.log.name + "*"))
    assert len(files) > 10
    counts = Counter(subjects(read_log(*files)))
    assert counts == Counter(f"sst-rot-{i}" for i in range(1000))


@pytest.mark.exec_only(reason="the caller's RLIMIT_FSIZE binds the exec'd shim, not the recorder")
def test_callers_file_size_limit_never_leaves_a_partial_line(shim, syslog):
    assert shim.run(stdin=message("sst-first")).returncode == 0
    limit = shim.log.stat().st_size + 4096
    # Soft and hard alike, as `ulimit -f` sets them: the shim cannot raise it.
    capped = ("prlimit", f"--fsize={limit}", "--")
    data = message("sst-big", 64 << 10)
    proc = shim.run(wrap=capped, stdin=data)
    assert proc.returncode == EX_TEMPFAIL, proc.stderr
    assert_kept_whole(syslog.record_with("sst-big"), data)
    assert shim.run(wrap=capped, stdin=message("sst-small")).returncode == 0
    # Only the soft limit lowered: the shim raises it to the hard one and the record goes to the log.
    soft = ("prlimit", f"--fsize={limit}:unlimited", "--")
    assert shim.run(wrap=soft, stdin=message("sst-soft", 64 << 10)).returncode == 0
    assert subjects(read_log(shim.log)) == ["sst-first", "sst-small", "sst-soft"]


def test_closed_stdout_and_stderr_leave_no_partial_or_foreign_line(shim):
    # With fds 1 and 2 closed the log may be opened as fd 1 or 2: nothing meant for stdout or stderr
    # (warnings about the unknown options here) may then land in it.
    assert shim.run(wrap=CLOSED_STDOUT_STDERR, stdin=message("sst-closed")).returncode == 0
    odd_options = ("-X", "/tmp/trace", "-z", "user")
    assert shim.run(*odd_options, wrap=CLOSED_STDOUT_STDERR, stdin=message("sst-unknown")).returncode == 0
    assert subjects(read_log(shim.log)) == ["sst-closed", "sst-unknown"]


def test_smtp_session_with_closed_stdout_keeps_its_message_and_the_log_clean(shim, syslog):
    # SMTP replies go to stdout: with it closed, they must not land in a log opened as fd 1 either.
    proc = shim.run("-bs", wrap=CLOSED_STDOUT_STDERR, stdin=SMTP_DIALOGUE)
    assert proc.returncode in (0, EX_TEMPFAIL)
    logged = subjects(read_log(shim.log))
    in_syslog = [token_of(r, TOKEN) for r in syslog.records().values()]
    assert logged + in_syslog == ["sst-smtp"]


def test_a_fragment_left_by_a_killed_writer_never_glues_onto_the_next_record(shim):
    shim.log.write_bytes(b'{"@timestamp":"2026-01-01T00:00:00Z","message":"cut off he')
    os.chown(shim.log, shim.uid, shim.gid)
    assert shim.run(stdin=message("sst-after")).returncode == 0
    fragment, after = raw_lines(shim.log)
    with pytest.raises(BadLog):
        parse_record(fragment)
    assert subjects([parse_record(after)]) == ["sst-after"]


def _kill_mid_write(shim, data):
    """Start the shim on `data` and SIGKILL it once its record has started to reach the log; True when
    the kill left a fragment (the write did not finish first)."""
    before = shim.log.stat().st_size if shim.log.exists() else 0
    proc = shim.popen()
    feeder = threading.Thread(target=lambda: proc.communicate(data))
    feeder.start()
    try:
        while proc.poll() is None:
            if shim.log.exists() and shim.log.stat().st_size > before:
                proc.kill()
                break
    finally:
        feeder.join()
    with open(shim.log, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return proc.returncode == -9 and f.read(1) != b"\n"


@pytest.mark.exec_only(reason="kills the exec'd writer; the recorder killed mid-message is test_recorder's")
def test_kill_in_mid_write_of_a_large_record_leaves_later_records_whole(shim):
    shim.configure(max_message_bytes="256M", max_line_bytes="256M")
    assert shim.run(stdin=message("sst-earlier")).returncode == 0
    big = message("sst-killed", 96 << 20)  # its one write takes long enough to be caught in
    assert any(_kill_mid_write(shim, big) for _ in range(5)), "every write finished before the kill"
    later = ["sst-later-1", "sst-later-2", "sst-later-3"]
    for token in later:
        assert shim.run(stdin=message(token)).returncode == 0
    lines = raw_lines(shim.log)
    good, bad = [], []
    for raw in lines:
        try:
            good.append(token_of(parse_record(raw), TOKEN))
        except BadLog:
            bad.append(raw)
    # A try whose write finished before the kill left a whole record: that one is fine.
    assert [found for found in good if found != "sst-killed"] == ["sst-earlier", *later]
    # The fragment is a line of its own (ended by the next writer's newline), never part of a record.
    assert len(bad) == 1
    assert b"sst-killed" in bad[0]
    assert b"sst-later" not in bad[0]


def _concurrent(shim, workdir, writers, size):
    """`writers` shims started together, each on a message of `size` bytes from a file; returns the
    inputs by token once every one has exited 0."""
    shim.configure(max_message_bytes=2 * size, max_line_bytes=4 * size)
    inputs = {}
    procs = []
    for i in range(writers):
        inputs[f"sst-conc-{i}"] = data = message(f"sst-conc-{i}", size)
        path = workdir / f"in-{i}"
        path.write_bytes(data)
        with open(path, "rb") as stdin:
            procs.append(shim.popen(stdin=stdin))
    statuses = [proc.wait(timeout=120) for proc in procs]
    for proc in procs:
        proc.stdout.close()
        proc.stderr.close()
    assert statuses == [0] * writers
    return inputs


def test_64_concurrent_1mib_messages_never_interleave(shim, workdir):
    inputs = _concurrent(shim, workdir, 64, 1 << 20)
    # Blank lines are the next test's subject: here, every record is whole and on a line of its own.
    records = [parse_record(raw) for raw in raw_lines(shim.log) if raw != b"\n"]
    assert sorted(subjects(records)) == sorted(inputs)
    for record in records:
        assert_kept_whole(record, inputs[token_of(record, TOKEN)])


def test_concurrent_large_writes_leave_no_blank_line(shim, workdir):
    _concurrent(shim, workdir, 64, 1 << 20)
    blank = [n for n, raw in enumerate(raw_lines(shim.log), 1) if raw == b"\n"]
    assert blank == []
