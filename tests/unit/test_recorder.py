# SPDX-License-Identifier: MIT
"""The resident recorder (docs/recorder.md): identity from the kernel, the hand-off contract, budgets,
bounds, signals, and that nothing a caller does stops it from recording the next message.

The unit and fault suites already run every shim test through a recorder too; these are the recorder's
own. `handoff` is the launcher's socket side in Python (tests/handoff.py), `_raw` a client that breaks
the contract on purpose.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sendmail_shim import recorder
from shimtest import (
    ACTIVATE,
    HANDOFF,
    PYTHON,
    RECORDER,
    Shim,
    listening,
    message_bytes,
    read_log,
    stop_cleanly,
    through_recorder,
)

HEADER = struct.Struct(">4sIII")
VERSION = 2
GREETING = b"SSHM" + struct.pack(">I", VERSION)
NOBODY = 65534
EX_UNAVAILABLE = 69
EX_OSERR = 71


@pytest.fixture
def rig(tmp_path, syslog):
    """start(**settings): a shim whose command hands over to a recorder of its own, started with the
    config `settings`. The recorder must stop cleanly at the end unless the test killed it."""
    directory = Path(tempfile.mkdtemp(prefix="sst-core-", dir="/tmp"))
    # Searchable by a caller of another uid (the identity test); the socket itself is 0666.
    directory.chmod(0o755)
    (tmp_path / "log").mkdir()
    shim = Shim(tmp_path / "sendmail-shim.conf", tmp_path / "log" / "mail.ndjson", syslog)

    def start(**settings):
        shim.configure(**settings)
        through_recorder(shim, directory)
        return shim

    yield start
    try:
        if shim.recorder is not None and shim.recorder.proc.returncode is None:
            stop_cleanly(shim.recorder)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _raw(path, *, header=None, fds=None, argv=(b"sendmail", b"-i", b"root"), go=True, body=b""):
    """A hand-off as bytes: `header` (None: a valid one), `fds` passed with it (None: a pipe holding
    `body`, and /dev/null twice), sent after the greeting. Returns the reply bytes after the greeting up to
    the connection's end: b"" for a connection closed without a greeting (refused)."""
    block = b"".join(arg + b"\0" for arg in argv)
    own = []
    if fds is None:
        r, w = os.pipe()
        os.write(w, body)
        os.close(w)
        null = os.open(os.devnull, os.O_RDWR)
        own = fds = [r, null, null]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # Long enough for the 1000th of 1000 callers on a loaded machine: they wait in the backlog.
        sock.settimeout(300)
        sock.connect(str(path))
        if _greeting(sock) != GREETING:
            return b""
        head = HEADER.pack(b"SSHM", VERSION, len(argv), len(block)) if header is None else header
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
        sock.sendmsg([head], rights)
        if len(head) < HEADER.size:
            sock.shutdown(socket.SHUT_WR)
        else:
            sock.sendall(block)
        reply = sock.recv(1)
        if reply == b"A" and go:
            sock.sendall(b"G")
            while chunk := sock.recv(16):
                reply += chunk
        return reply
    except OSError:
        return b""
    finally:
        sock.close()
        for fd in set(own):
            os.close(fd)


def _greeting(sock):
    got = b""
    while len(got) < len(GREETING) and (part := sock.recv(len(GREETING) - len(got))):
        got += part
    return got


def _still_records(shim, token):
    proc = shim.run("-i", "root", stdin=f"Subject: {token}\n\nstill here\n".encode())
    assert proc.returncode == 0, proc.stderr
    assert token in [rec["email"].get("subject") for rec in shim.records()]


def _holding(recorder, count):
    """Wait until the recorder holds `count` connections (a thread each, besides its main one)."""
    deadline = time.monotonic() + 30
    while len(os.listdir(f"/proc/{recorder.proc.pid}/task")) < count + 1:
        assert time.monotonic() < deadline, f"the recorder never held {count} connections"
        time.sleep(0.01)


def _read_by_the_recorder(stdin):
    """Wait until the bytes written to a caller's `stdin` pipe are read: only the recorder reads it, and
    only after the launcher's G, so the message is in its hands."""
    deadline = time.monotonic() + 30
    while struct.unpack("i", fcntl.ioctl(stdin.fileno(), termios.FIONREAD, b"\0" * 4))[0]:
        assert time.monotonic() < deadline, "the recorder never read the message"
        time.sleep(0.01)


def _cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def test_identity_comes_from_the_kernel_not_from_the_caller(rig):
    shim = rig()
    user = (NOBODY, NOBODY) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    claims = {"SENDMAIL_SHIM_CALLER_UID": "4242", "SENDMAIL_SHIM_CALLER_GID": "4343", "USER": "root"}
    proc = subprocess.run(
        [PYTHON, str(HANDOFF), str(shim.recorder.socket), "sendmail", "-i", "-f", "root@forged", "root"],
        input=b"Subject: who\n\nx\n", capture_output=True, env=claims, cwd="/",
        user=user[0], group=user[1], extra_groups=[],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rec = shim.record()
    assert (rec["user"]["id"], rec["group"]["id"]) == (str(user[0]), str(user[1]))
    assert rec["user"]["name"] == pwd.getpwuid(user[0]).pw_name
    assert rec["sendmail_shim"]["entry"] == "recorder"
    # The launcher's pid and its parent (this test), as the exec path records the shim's.
    assert rec["process"]["parent"]["pid"] == os.getpid()


@pytest.mark.parametrize(
    "breakage",
    [
        {"header": HEADER.pack(b"XXXX", VERSION, 3, 18)},
        {"header": HEADER.pack(b"SSHM", 1, 3, 18)},
        {"header": HEADER.pack(b"SSHM", VERSION, 3, 0xFFFFFFFF)},
        {"header": HEADER.pack(b"SSHM", VERSION, 3, 18)[:10]},
        {"header": HEADER.pack(b"SSHM", VERSION, 7, 17)},
        {"header": HEADER.pack(b"SSHM", VERSION, 3, 18)},
        {"fds": []},
        {"fds": [0]},
        {"fds": [0, 1, 2, 2]},
        {"go": False},
    ],
    ids=[
        "magic",
        "version",
        "huge-argv",
        "truncated-header",
        "argc",
        "short-argv",
        "0-fds",
        "1-fd",
        "4-fds",
        "no-go",
    ],
)
def test_a_malformed_hand_off_is_refused_and_the_next_message_lands(rig, breakage):
    shim = rig()
    reply = _raw(shim.recorder.socket, **breakage)
    assert reply in (b"", b"A")
    assert shim.records() == []
    _still_records(shim, "after")
    assert "refused" in shim.recorder.log()


def test_a_caller_gone_after_the_accept_leaves_no_record(rig):
    shim = rig()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(shim.recorder.socket))
    assert _greeting(sock) == GREETING
    r, w = os.pipe()
    sock.sendmsg(
        [HEADER.pack(b"SSHM", VERSION, 1, 9)],
        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("3i", r, w, w))],
    )
    sock.sendall(b"sendmail\0")
    assert sock.recv(1) == b"A"
    sock.close()
    os.write(w, b"Subject: not handed over\n\n")
    os.close(w)
    _still_records(shim, "after")
    # Not read by the recorder: the bytes are still in the pipe for whoever takes the exec path.
    assert os.read(r, 100) == b"Subject: not handed over\n\n"
    os.close(r)
    assert len(shim.records()) == 1


@pytest.mark.parametrize("odd", ["directory", "socket", "closed-pipe"])
def test_odd_descriptors_never_stop_the_recorder(rig, tmp_path, odd):
    shim = rig()
    null = os.open(os.devnull, os.O_RDWR)
    if odd == "directory":
        stdin = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        expected = {75}
    elif odd == "socket":
        stdin, other = socket.socketpair()
        other.sendall(b"Subject: over a socket\n\nx\n")
        other.close()
        stdin = stdin.detach()
        expected = {0}
    else:
        stdin, w = os.pipe()
        os.close(w)
        expected = {0}
    try:
        reply = _raw(shim.recorder.socket, fds=[stdin, null, null])
    finally:
        os.close(stdin)
        os.close(null)
    assert reply[:1] == b"A" and set(reply[1:]) <= expected and len(reply) == 2
    _still_records(shim, "after")


@pytest.mark.parametrize("nonblocking", [False, True])
def test_the_passed_descriptors_keep_their_flags(rig, nonblocking):
    """Read (a message) and written to (-bv's answer): the caller's flags stay as they were."""
    shim = rig()
    r, w = os.pipe()
    out_r, out_w = os.pipe()
    fds = [r, out_w, out_w]
    for fd in fds:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK if nonblocking else flags & ~os.O_NONBLOCK)
    before = [fcntl.fcntl(fd, fcntl.F_GETFL) for fd in fds]
    os.write(w, b"Subject: flags\n\nx\n")
    os.close(w)
    assert _raw(shim.recorder.socket, fds=fds) == b"A\0"
    assert _raw(shim.recorder.socket, fds=fds, argv=(b"sendmail", b"-bv", b"a@x")) == b"A\0"
    assert os.read(out_r, 100) == b"a@x... deliverable: mailer sendmail-shim\n"
    assert [fcntl.fcntl(fd, fcntl.F_GETFL) for fd in fds] == before
    assert message_bytes(shim.record()) == b"Subject: flags\n\nx\n"
    for fd in (r, out_r, out_w):
        os.close(fd)


def test_argv0_names_the_program(rig):
    shim = rig()
    handoff = [PYTHON, str(HANDOFF), str(shim.recorder.socket)]
    mailq = subprocess.run([*handoff, "/usr/bin/mailq"], capture_output=True, stdin=subprocess.DEVNULL)
    assert (mailq.returncode, mailq.stdout) == (0, b"Mail queue is empty\n")
    newaliases = subprocess.run([*handoff, "newaliases"], capture_output=True, stdin=subprocess.DEVNULL)
    assert (newaliases.returncode, newaliases.stdout, newaliases.stderr) == (0, b"", b"")
    assert shim.records() == []


def test_a_stdin_that_never_ends_holds_only_its_connection_and_meets_the_time_budget(rig):
    shim = rig(recorder_max_input_seconds=3)
    start = time.monotonic()
    endless = shim.popen("-i", "root")
    endless.stdin.write(b"Subject: endless\n\nfirst line\n")
    endless.stdin.flush()
    # Others land while it waits.
    _still_records(shim, "meanwhile")
    assert endless.poll() is None
    # Its stdin stays open: only the budget ends the reading.
    status = endless.wait(timeout=30)
    elapsed = time.monotonic() - start
    err = endless.stderr.read()
    for stream in (endless.stdin, endless.stdout, endless.stderr):
        stream.close()
    assert status == 0, err
    # The budget, and no more than a loaded machine's delays past it.
    assert 3 <= elapsed < 3 + 20
    assert b"stopped reading the message after its time" in err
    (rec,) = [r for r in shim.records() if r["email"].get("subject") == "endless"]
    assert rec["sendmail_shim"]["message"]["budget_exceeded"] == "seconds"
    assert message_bytes(rec) == b"Subject: endless\n\nfirst line\n"


def test_dev_zero_meets_the_byte_budget(rig):
    shim = rig(recorder_max_input_bytes="1M", max_message_bytes="64K")
    with open("/dev/zero", "rb") as zero:
        proc = subprocess.run(shim.argv("-i", "root"), stdin=zero, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert b"stopped reading the message after 1048576 bytes" in proc.stderr
    kept = shim.record()["sendmail_shim"]["message"]
    assert (kept["bytes"], kept["kept_bytes"], kept["truncated"]) == (1 << 20, 64 << 10, True)
    assert kept["budget_exceeded"] == "bytes"


def test_dev_zero_meets_the_time_budget(rig):
    """An input that is always ready never makes poll() wait: the deadline is looked at on every read."""
    shim = rig(recorder_max_input_seconds=2, recorder_max_input_bytes="1G", max_message_bytes="64K")
    start = time.monotonic()
    with open("/dev/zero", "rb") as zero:
        proc = subprocess.run(shim.argv("-i", "root"), stdin=zero, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 2 + 20
    assert b"stopped reading the message after its time" in proc.stderr
    kept = shim.record()["sendmail_shim"]["message"]
    assert kept["budget_exceeded"] == "seconds"
    assert 0 < kept["bytes"] < 1 << 30


def test_past_its_share_a_caller_is_refused_unanswered_and_logged_once(rig):
    # A bound of 8: one connection for each uid but root, which may take all 8.
    shim = rig(recorder_max_connections=8)
    share = 8 if shim.uid == 0 else 1
    holders = [shim.popen("-i", "root") for _ in range(share)]
    for i, proc in enumerate(holders):
        proc.stdin.write(f"Subject: held {i}\n\n".encode())
        proc.stdin.flush()
    _holding(shim.recorder, share)
    # Refused without a greeting (no thread, no wait): the launcher would take the exec path at once.
    assert [shim.run("-i", "root", stdin=b"Subject: refused\n\nx\n").returncode for _ in range(3)] == [
        EX_UNAVAILABLE
    ] * 3
    assert all(proc.poll() is None for proc in holders)
    assert shim.recorder.log().count("refused pid") == 1, shim.recorder.log()
    for proc in holders:
        proc.stdin.close()
    for proc in holders:
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()
        proc.stderr.close()
    # Its share given back, the uid is served again.
    _still_records(shim, "after")
    assert sorted(r["email"]["subject"] for r in shim.records()) == sorted(
        [f"held {i}" for i in range(share)] + ["after"]
    )


def test_subordinate_uids_count_as_their_owner():
    ranges = recorder.parse_subuid(
        "alice:100000:65536\n1001:165536:65536\nroot:231072:65536\nghost:296608:10\nbad line\nbob:1:0\n",
        {"alice": 1000, "root": 0}.get,
    )
    assert ranges == [(100000, 165535, 1000), (165536, 231071, 1001)]
    owners = [recorder.owner_of(uid, ranges) for uid in (99999, 100000, 165535, 165536, 231071, 231072, 0)]
    assert owners == [99999, 1000, 1000, 1001, 1001, 231072, 0]


def test_shares_keep_roots_apart():
    shares = recorder.Shares(16)
    assert (shares.root_share, shares.uid_share) == (2, 2)
    assert [shares.take(1000) for _ in range(3)][2] == "it holds its share of 2 connections"
    for uid in range(1001, 1007):
        assert (shares.take(uid), shares.take(uid)) == (None, None)
    # 14 held by other uids: the two left are root's.
    assert "hold their 14 connections" in shares.take(2000)
    assert (shares.take(0), shares.take(0)) == (None, None)
    assert shares.take(0) == "all 16 connections are held"
    shares.give_back(0)
    assert shares.take(3000) is not None
    assert shares.take(0) is None


def test_a_recorder_killed_mid_message_leaves_no_record_and_the_caller_gets_71(rig):
    shim = rig()
    proc = shim.popen("-i", "root")
    proc.stdin.write(b"Subject: cut\n\npart of it\n")
    proc.stdin.flush()
    _read_by_the_recorder(proc.stdin)
    shim.recorder.proc.kill()
    shim.recorder.proc.wait()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == EX_OSERR
    assert b"without a status" in err
    assert shim.log_bytes() == b""
    # No recorder any more: the launcher would take the exec path; the hand-off client says so.
    late = shim.run("-i", "root", stdin=b"x")
    assert late.returncode == EX_UNAVAILABLE


def test_sigterm_finishes_the_messages_held_and_refuses_new_ones(rig):
    shim = rig()
    held = shim.popen("-i", "root")
    held.stdin.write(b"Subject: in flight\n\n")
    held.stdin.flush()
    _read_by_the_recorder(held.stdin)
    shim.recorder.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while listening(shim.recorder.socket):
        assert time.monotonic() < deadline, "the recorder kept listening after SIGTERM"
        time.sleep(0.01)
    assert shim.recorder.proc.poll() is None
    assert shim.run("-i", "root", stdin=b"x").returncode == EX_UNAVAILABLE
    held.stdin.write(b"the rest\n")
    held.stdin.close()
    assert held.wait(timeout=30) == 0
    held.stdout.close()
    held.stderr.close()
    assert shim.recorder.proc.wait(timeout=30) == 0
    assert message_bytes(shim.record()) == b"Subject: in flight\n\nthe rest\n"


def _hand_off_thread(path, token, results, index):
    results[index] = _raw(path, body=f"Subject: {token}\n\nmessage {token}\n".encode())


def test_1000_concurrent_connections_are_each_recorded_once_or_refused_unanswered(rig):
    shim = rig(recorder_max_connections=64)
    pid = shim.recorder.proc.pid
    ticks = _cpu_ticks(pid)
    results = [None] * 1000
    threads = [
        threading.Thread(target=_hand_off_thread, args=(shim.recorder.socket, f"sst-{i}", results, i))
        for i in range(1000)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    used = (_cpu_ticks(pid) - ticks) / os.sysconf("SC_CLK_TCK")
    # Refused ones (b"") would take the exec path: never half taken, never recorded.
    assert set(results) <= {b"A\0", b""}
    recorded = {f"sst-{i}" for i, result in enumerate(results) if result == b"A\0"}
    assert len(recorded) >= 8
    # read_log: every line one whole strict-JSON record.
    subjects = Counter(rec["email"]["subject"] for rec in read_log(shim.log))
    assert subjects == Counter(recorded)
    print(f"recorder CPU: {used:.2f} s for 1000 connections, {len(recorded)} recorded")


def test_socket_is_for_runs_without_root(tmp_path):
    """As root the socket comes from systemd; without root --socket binds it, mode 0666, and greets."""
    directory = Path(tempfile.mkdtemp(prefix="sst-core-", dir="/tmp"))
    user = (NOBODY, NOBODY) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(directory, *user)
    path = directory / "r.sock"
    command = [PYTHON, "-I", "-S", str(RECORDER), "--socket", str(path)]
    try:
        if os.geteuid() == 0:
            as_root = subprocess.run(command, capture_output=True, env={}, timeout=30)
            assert as_root.returncode == 64
            assert b"--socket is for runs without root" in as_root.stderr
            assert not path.exists()
        proc = subprocess.Popen(
            command, env={}, stderr=subprocess.PIPE, user=user[0], group=user[1], extra_groups=[], cwd="/"
        )
        try:
            deadline = time.monotonic() + 20
            while not path.exists():
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
            assert (path.lstat().st_uid, path.lstat().st_mode & 0o777) == (user[0], 0o666)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(20)
                sock.connect(str(path))
                assert _greeting(sock) == GREETING
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
            proc.stderr.close()
        assert not path.exists()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_socket_activation_takes_the_listening_socket_from_systemd(tmp_path, syslog):
    directory = Path(tempfile.mkdtemp(prefix="sst-core-", dir="/tmp"))
    shim = Shim(tmp_path / "c.conf", tmp_path / "mail.ndjson", syslog)
    path = directory / "r.sock"
    proc = subprocess.Popen(
        [PYTHON, str(ACTIVATE), str(path), PYTHON, "-I", "-S", str(RECORDER)], env=shim.env(),
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not path.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc_handoff = subprocess.run(
            [PYTHON, str(HANDOFF), str(path), "sendmail", "-i", "root"], input=b"Subject: activated\n\nx\n",
            capture_output=True, timeout=30,
        )  # fmt: skip
        assert proc_handoff.returncode == 0, proc_handoff.stderr
        assert shim.record()["email"]["subject"] == "activated"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
        # The socket is systemd's: the recorder leaves it where it is.
        assert path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        shutil.rmtree(directory, ignore_errors=True)
