# SPDX-License-Identifier: MIT
"""Faults on the recorder's path, through the real setuid launcher and the real recorder.

What each test holds to (docs/recorder.md): nothing duplicated, and nothing lost that the caller was told
was kept; a caller that got 0 is in the log exactly once; a caller that got anything else may or may not
be (a recorder killed between its write and its status byte), but never twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import socket
import subprocess
import termios
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from launcher_support import as_user, run, wait_for
from shimtest import message_bytes

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
        # The caller goes on writing; the launcher may already be gone with the pipe's last reader.
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(b"the rest, never read\n")
            proc.stdin.flush()
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    assert proc.wait(timeout=30) == 71
    assert proc.stderr.read() == (
        b"sendmail-shim: launcher: the recorder ended before it gave a status; message not accepted\n"
    )
    assert shim.log_bytes() == b""
    assert shim.syslog_records() == []


def test_launcher_killed_while_it_waits_the_message_is_still_recorded(recorder_shim, caller):
    """A signal to the launcher after "G" (default action: it dies) loses only the status."""
    shim = recorder_shim
    proc = subprocess.Popen(
        as_user(caller, shim.launcher, "ops@example.org"), stdin=subprocess.PIPE, env={},
    )  # fmt: skip
    data = message("m-7-1", 50)
    proc.stdin.write(data[:100])
    proc.stdin.flush()
    # Only the recorder reads, and only after "G"; setpriv, before it execs the launcher, has the ids too.
    wait_for(lambda: pipe_unread(proc.stdin.fileno()) == 0)
    wait_for(lambda: f"Uid:\t{caller.uid}\t{caller.uid}\t{caller.uid}" in _launcher_status(proc.pid))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    proc.stdin.write(data[100:])
    proc.stdin.close()
    wait_for(lambda: shim.log_bytes().endswith(b"\n"))
    [rec] = shim.records()
    assert message_bytes(rec) == data
    assert rec["user"]["id"] == str(caller.uid)


def _send(launcher, caller, token: str) -> tuple[str, int]:
    """A caller that writes its message in two parts, so that some are in flight whenever a restart hits."""
    data = message(token)
    proc = subprocess.Popen(
        as_user(caller, launcher, "ops@example.org"),
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={},
    )  # fmt: skip
    try:
        proc.stdin.write(data[:40])
        proc.stdin.flush()
    except BrokenPipeError:  # a recorder killed right after "G": the launcher is gone with 71
        pass
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
    logged = tokens_in(shim.any_records())  # through the recorder, or the exec path while it restarted
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
    # The recorder stopped while the callers start: their connections wait in its backlog, their
    # launchers on the greeting, and it meets all of them at once when it continues (a launcher that
    # waited 10 seconds meanwhile, on a busy machine, took the exec path: also exactly once).
    shim.recorder.proc.send_signal(signal.SIGSTOP)
    try:
        with open(prefix / "thousand.stderr", "ab") as errors:
            for t in tokens:
                with open(spool / t, "rb") as stdin:
                    # Popen's own user switch rather than setpriv: one exec less for each of the thousand.
                    procs.append(subprocess.Popen(
                        [shim.launcher, "ops@example.org"], stdin=stdin, stdout=subprocess.DEVNULL,
                        stderr=errors, env={}, user=caller.uid, group=caller.gid, extra_groups=[],
                    ))  # fmt: skip
    finally:
        shim.recorder.proc.send_signal(signal.SIGCONT)
        statuses = Counter(p.wait(timeout=600) for p in procs)
    assert statuses == {0: 1000}, (prefix / "thousand.stderr").read_text()[-2000:]
    records = shim.any_records()
    assert tokens_in(records) == dict.fromkeys(tokens, 1)
    # Past the caller's share the recorder refuses at once, unanswered: those took the exec path.
    entries = Counter(r["sendmail_shim"]["entry"] for r in records)
    assert set(entries) <= {"recorder", "exec"} and entries["recorder"] > 0, entries


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
    assert 2 <= elapsed < 30  # ended by the budget: its stdin is still open
    assert status == 0, endless.stderr.read()
    assert tokens_in(shim.records()) == {"m-6-1": 1, "m-6-2": 1}
    flagged = {token: rec["sendmail_shim"]["message"].get("budget_exceeded") for rec in shim.records()
               for token in tokens_in([rec])}  # fmt: skip
    assert flagged == {"m-6-1": "seconds", "m-6-2": None}


def _dev_zero_caller(shim, caller, prefix, budget: str) -> tuple[float, subprocess.CompletedProcess]:
    config = prefix / "etc" / "budget.conf"
    config.write_text(shim.config.read_text() + budget)
    config.chmod(0o644)
    shim.recorder.start(config)
    started = time.monotonic()
    with open("/dev/zero", "rb") as zero:
        cmd = as_user(caller, shim.launcher, "ops@example.org")
        proc = subprocess.run(cmd, stdin=zero, capture_output=True, env={}, timeout=120)
    return time.monotonic() - started, proc


def test_dev_zero_as_stdin_meets_the_byte_budget(recorder_shim, caller, prefix):
    shim = recorder_shim
    elapsed, proc = _dev_zero_caller(shim, caller, prefix, "recorder_max_input_bytes = 16M\n")
    assert elapsed < 30
    assert proc.returncode == 0, proc.stderr
    [rec] = shim.records()
    assert rec["user"]["id"] == str(caller.uid)
    assert rec["sendmail_shim"]["message"]["budget_exceeded"] == "bytes"


def test_dev_zero_as_stdin_meets_the_time_budget(recorder_shim, caller, prefix):
    shim = recorder_shim
    # The byte budget well beyond what 2 seconds can read: the time budget must be what stops it.
    elapsed, proc = _dev_zero_caller(
        shim, caller, prefix, "recorder_max_input_seconds = 2\nrecorder_max_input_bytes = 1G\n"
    )
    assert elapsed < 10
    assert proc.returncode == 0, proc.stderr
    [rec] = shim.records()
    assert rec["sendmail_shim"]["message"]["budget_exceeded"] == "seconds"
