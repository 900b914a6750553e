"""Faults on the recorder's path, through the real setuid launcher and the real recorder.

What each test holds to (docs/recorder.md): nothing duplicated, and nothing lost that the caller was told
was kept; a caller that got 0 is in the log exactly once; a caller that got anything else may or may not
be (a recorder killed between its write and its status byte), but never twice.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import subprocess
import termios
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from launcher_support import as_user, run, wait_for

pytestmark = pytest.mark.root

TOKEN = re.compile(r"\bm-\d+-\d+\b")


def message(token: str, body_lines: int = 3) -> bytes:
    head = f"From: app@example.org\nTo: ops@example.org\nSubject: job {token}\n\n"
    return (head + f"{token} line\n" * body_lines).encode()


def tokens_in(records: list[dict]) -> Counter:
    return Counter(t for rec in records for t in set(TOKEN.findall(rec.get("email", {}).get("subject", ""))))


def pipe_unread(fd: int) -> int:
    """Bytes written into a pipe that nobody has read yet (FIONREAD works on the write end too)."""
    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, "little")


def _launcher_status(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def test_recorder_killed_mid_message_is_71_and_no_partial_record(recorder_shim, caller):
    shim = recorder_shim
    proc = subprocess.Popen(
        as_user(caller, shim.launcher, "ops@example.org"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={},
    )  # fmt: skip
    try:
        proc.stdin.write(message("m-1-1", 200))
        proc.stdin.flush()
        # The recorder has the message: it read what was written, and the launcher, past "G", is the
        # caller for good while it waits for the status.
        wait_for(lambda: pipe_unread(proc.stdin.fileno()) == 0)
        wait_for(lambda: f"Uid:\t{caller.uid}\t{caller.uid}\t{caller.uid}" in _launcher_status(proc.pid))
        shim.recorder.kill()
        proc.stdin.write(b"the rest, never read\n")
    finally:
        proc.stdin.close()
    assert proc.wait(timeout=30) == 71
    assert proc.stderr.read() == (
        b"sendmail-shim: launcher: the recorder ended before it gave a status; message not accepted\n"
    )
    assert shim.log_bytes() == b""
    assert shim.syslog_records() == []


def _send(launcher, caller, token: str) -> tuple[str, int]:
    """A caller that writes its message in two parts, so that some are in flight whenever a restart hits."""
    data = message(token)
    proc = subprocess.Popen(
        as_user(caller, launcher, "ops@example.org"),
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={},
    )  # fmt: skip
    proc.stdin.write(data[:40])
    proc.stdin.flush()
    time.sleep(0.01)
    proc.communicate(data[40:], timeout=120)
    return token, proc.returncode


def test_recorder_restarted_during_a_burst_loses_and_doubles_nothing(recorder_shim, caller):
    shim = recorder_shim
    tokens = [f"m-2-{i}" for i in range(200)]
    done = []
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(_send, shim.launcher, caller, t) for t in tokens]
        for f in futures:
            f.add_done_callback(lambda _: done.append(1))
        wait_for(lambda: len(done) >= 20)
        shim.recorder.stop()  # SIGTERM: it finishes what it holds
        shim.recorder.start()
        wait_for(lambda: len(done) >= 60)
        in_flight_at_kill = 200 - len(done)
        shim.recorder.kill()
        shim.recorder.start()
        statuses = dict(f.result() for f in futures)
    assert in_flight_at_kill > 0, "the burst was over before the recorder was killed"
    logged = tokens_in(shim.records())
    kept = tokens_in(shim.syslog_records())
    assert [t for t, n in (logged + kept).items() if n > 1] == [], "a message was recorded twice"
    assert [t for t in tokens if statuses[t] == 0 and logged[t] != 1] == [], "a message told 0 is not logged"
    assert [t for t in tokens if logged[t] + kept[t] == 0 and statuses[t] == 0] == []
    assert set(statuses.values()) <= {0, 71, 75}, statuses


def test_regular_file_at_the_socket_place_takes_the_exec_path(exec_shim, caller, svc):
    shim = exec_shim
    shim.recorder.socket.write_bytes(b"")
    os.chown(shim.recorder.socket, svc.uid, svc.gid)
    proc = run(as_user(caller, shim.launcher, "ops@example.org"), stdin=message("m-3-1"))
    assert proc.returncode == 0, proc.stderr
    assert tokens_in(shim.records()) == {"m-3-1": 1}


def test_another_users_socket_at_the_socket_place_is_not_connected_to(exec_shim, caller):
    """A socket of another uid in the recorder's directory (only root could put it there: here the test
    does, owned by the caller): the launcher does not connect, and takes the exec path."""
    shim = exec_shim
    impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        impostor.bind(str(shim.recorder.socket))
        os.chown(shim.recorder.socket, caller.uid, caller.gid)
        shim.recorder.socket.chmod(0o666)
        impostor.listen(8)
        proc = run(as_user(caller, shim.launcher, "ops@example.org"), stdin=message("m-4-1"))
        assert proc.returncode == 0, proc.stderr
        assert tokens_in(shim.records()) == {"m-4-1": 1}
        impostor.setblocking(False)
        with pytest.raises(BlockingIOError):
            impostor.accept()
    finally:
        impostor.close()


def test_a_thousand_connections_at_once_are_each_recorded_once(recorder_shim, caller, prefix):
    shim = recorder_shim
    spool = prefix / "spool"
    spool.mkdir(mode=0o755, exist_ok=True)
    tokens = [f"m-5-{i}" for i in range(1000)]
    for t in tokens:
        (spool / t).write_bytes(message(t))
    procs = []
    with open(prefix / "thousand.stderr", "ab") as errors:
        for t in tokens:
            with open(spool / t, "rb") as stdin:
                # Popen's own user switch rather than setpriv: one exec less for each of the thousand.
                procs.append(subprocess.Popen(
                    [shim.launcher, "ops@example.org"], stdin=stdin, stdout=subprocess.DEVNULL, stderr=errors,
                    env={}, user=caller.uid, group=caller.gid, extra_groups=[],
                ))  # fmt: skip
    statuses = Counter(p.wait(timeout=600) for p in procs)
    assert statuses == {0: 1000}, (prefix / "thousand.stderr").read_text()[-2000:]
    assert tokens_in(shim.records()) == dict.fromkeys(tokens, 1)


def test_stdin_that_never_ends_holds_only_its_own_connection(recorder_shim, caller, prefix):
    shim = recorder_shim
    config = prefix / "etc" / "budget.conf"
    config.write_text(shim.config.read_text() + "recorder_max_input_seconds = 2\n")
    config.chmod(0o644)
    shim.recorder.start(config)
    endless = subprocess.Popen(
        as_user(caller, shim.launcher, "ops@example.org"),
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={},
    )  # fmt: skip
    started = time.monotonic()
    try:
        endless.stdin.write(message("m-6-1"))
        endless.stdin.flush()
        wait_for(lambda: pipe_unread(endless.stdin.fileno()) == 0)
        other = run(as_user(caller, shim.launcher, "ops@example.org"), stdin=message("m-6-2"))
        assert other.returncode == 0, other.stderr
        assert endless.poll() is None, "the other caller waited for the endless one"
        assert tokens_in(shim.records()) == {"m-6-2": 1}
        # Its budget over, the recorder records what it has and answers, while stdin is still open.
        status = endless.wait(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        endless.stdin.close()
    assert 2 <= elapsed < 10
    assert status == 0, endless.stderr.read()
    assert tokens_in(shim.records()) == {"m-6-1": 1, "m-6-2": 1}


def test_dev_zero_as_stdin_meets_the_budget(recorder_shim, caller, prefix):
    shim = recorder_shim
    config = prefix / "etc" / "budget.conf"
    config.write_text(shim.config.read_text() + "recorder_max_input_seconds = 2\n")
    config.chmod(0o644)
    shim.recorder.start(config)
    started = time.monotonic()
    with open("/dev/zero", "rb") as zero:
        cmd = as_user(caller, shim.launcher, "ops@example.org")
        proc = subprocess.run(cmd, stdin=zero, capture_output=True, env={}, timeout=60)
    assert time.monotonic() - started < 10
    assert proc.returncode == 0, proc.stderr
    [rec] = shim.records()
    assert rec["user"]["id"] == str(caller.uid)
