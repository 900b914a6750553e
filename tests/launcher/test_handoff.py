# SPDX-License-Identifier: MIT
"""The launcher's side of the hand-off (docs/recorder.md), against a stand-in recorder the test controls.

The stand-in launcher's socket is a place no real recorder listens on; each test puts a peer there that
records what the launcher sent (header, argv block, fds, SO_PEERCRED) and answers as the test says: so
every branch of the launcher is reached, including the ones a sound recorder never takes (no "A",
silence, gone after "G"). A refused or untrusted hand-off must end in the exec path (the stand-in entry
reports), exactly once.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from launcher_support import PYTHON, Peer, User, as_user, records, run, wait_for

pytestmark = pytest.mark.root


def closes_without_a_byte(conn, fds):
    """What the recorder does with a hand-off it refuses."""


def never_answers(conn, fds):
    """A recorder stuck, or at its bound: the launcher must give up after its 10 seconds."""
    return {"after": conn.recv(1)}


def gone_after_go(conn, fds):
    conn.sendall(b"A")
    return {"go": conn.recv(1)}


@pytest.fixture
def peer(standin, svc):
    peers = []

    def start(answer, owner: int | None = None) -> Peer:
        peers.append(Peer(standin.socket, svc.uid if owner is None else owner, answer))
        return peers[-1]

    standin.clear()
    yield start
    for p in peers:
        p.stopping.set()
        p.sock.close()
    standin.socket.unlink(missing_ok=True)
    standin.socket.parent.chmod(0o755)


def test_handoff_carries_argv_fds_and_the_callers_real_ids(peer, standin, caller):
    p = peer(records(42))
    args = ["-oi", "", "a b", "x\ny", "caf\u00e9", "\udcff", "-C/etc/shadow"]
    mailq = standin.launcher.parent / "mailq"
    proc = run(as_user(caller, mailq, *args), stdin=b"Subject: hi\n\nbody\n")
    assert proc.returncode == 42, proc.stderr
    assert (proc.stdout, proc.stderr) == (b"to the caller's stdout\n", b"to the caller's stderr\n")
    [got] = p.close()
    assert (got["magic"], got["version"], got["argc"]) == (b"SSHM", 1, 1 + len(args))
    assert got["argv"] == [os.fsencode(str(mailq)), *map(os.fsencode, args)]
    assert (got["uid"], got["gid"]) == (caller.uid, caller.gid)
    assert len(got["fds"]) == 3
    assert (got["go"], got["stdin"]) == (b"G", b"Subject: hi\n\nbody\n")
    assert not (standin.report_dir / "report.json").exists(), "the exec path ran as well"


def test_only_fds_0_1_2_are_passed(peer, standin, caller):
    """An fd the caller holds (root's /etc/shadow, as a leaked one would be) never reaches the recorder."""
    targets = []

    def answer(conn, fds):
        targets.extend(os.readlink(f"/proc/self/fd/{fd}") for fd in fds)
        return records(0)(conn, fds)

    p = peer(answer)
    with open("/etc/shadow", "rb") as shadow:
        os.dup2(shadow.fileno(), 200)
        try:
            proc = run(as_user(caller, standin.launcher), pass_fds=(shadow.fileno(), 200))
        finally:
            os.close(200)
    assert proc.returncode == 0, proc.stderr
    p.close()
    assert len(targets) == 3
    assert all(t.startswith("pipe:") for t in targets), targets


def test_while_the_recorder_has_the_message_the_launcher_is_the_caller_for_good(peer, standin, caller):
    went, release = threading.Event(), threading.Event()

    def answer(conn, fds):
        conn.sendall(b"A")
        conn.recv(1)
        went.set()
        release.wait(30)
        conn.sendall(b"\0")

    p = peer(answer)
    proc = subprocess.Popen(as_user(caller, standin.launcher), stdin=subprocess.DEVNULL, env={})
    try:
        wait_for(went.is_set)
        # It gave up root right after sending "G": wait for that step, then look at all four ids.
        wait_for(lambda: f"Uid:\t{caller.uid}\t{caller.uid}\t{caller.uid}" in _status(proc.pid))
        status = _status(proc.pid)
        assert f"Uid:\t{caller.uid}\t{caller.uid}\t{caller.uid}\t{caller.uid}" in status
        assert f"Gid:\t{caller.gid}\t{caller.gid}\t{caller.gid}\t{caller.gid}" in status
    finally:
        release.set()
        assert proc.wait(timeout=30) == 0
    p.close()


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return ""


def test_refused_handoff_takes_the_exec_path(peer, standin, caller):
    p = peer(closes_without_a_byte)
    proc = run(as_user(caller, standin.launcher, "ops@example.org"), stdin=b"body\n")
    assert proc.returncode == 0, proc.stderr
    assert len(p.close()) == 1
    assert standin.report()["argv"][1:] == ["ops@example.org"]


def test_no_accept_within_ten_seconds_takes_the_exec_path_without_go(peer, standin, caller):
    p = peer(never_answers)
    start = time.monotonic()
    proc = run(as_user(caller, standin.launcher), stdin=b"body\n")
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert 10 <= elapsed < 30
    [got] = p.close()
    assert got["after"] == b"", "the launcher sent something after giving up"
    assert standin.report()["resuid"][0] != caller.uid  # the exec path, dropped to the service user


def test_recorder_gone_after_go_is_71_and_no_exec(peer, standin, caller):
    p = peer(gone_after_go)
    proc = run(as_user(caller, standin.launcher), stdin=b"body\n")
    assert proc.returncode == 71
    assert proc.stderr == (
        b"sendmail-shim: launcher: the recorder ended before it gave a status; message not accepted\n"
    )
    [got] = p.close()
    assert got["go"] == b"G"
    assert not (standin.report_dir / "report.json").exists()


def _pending(p: Peer) -> int:
    """Connections waiting in the peer's backlog (its server thread is stopped first)."""
    p.stopping.set()
    p.thread.join(timeout=5)
    p.sock.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = p.sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


@pytest.mark.parametrize("spoil", ["caller_owns_the_socket", "root_owns_the_socket", "dir_writable_by_group",
                                   "dir_writable_by_others"])  # fmt: skip
def test_untrusted_socket_is_never_connected_to(peer, standin, caller, svc, spoil):
    owner = {"caller_owns_the_socket": caller.uid, "root_owns_the_socket": 0}.get(spoil, svc.uid)
    p = peer(records(0), owner=owner)
    if spoil.startswith("dir_"):
        standin.socket.parent.chmod(0o775 if spoil == "dir_writable_by_group" else 0o757)
    proc = run(as_user(caller, standin.launcher), stdin=b"body\n")
    assert proc.returncode == 0, proc.stderr
    assert standin.report()["resuid"][0] != caller.uid
    assert p.connections == []
    assert _pending(p) == 0, "the launcher connected to a socket it must not trust"


@pytest.mark.parametrize("kind", ["regular_file", "symlink_to_a_sound_socket"])
def test_not_a_socket_at_its_place_takes_the_exec_path(peer, standin, caller, svc, kind):
    elsewhere = standin.report_dir.parent / "elsewhere"
    elsewhere.mkdir(mode=0o755, exist_ok=True)
    p = Peer(elsewhere / "recorder.sock", svc.uid, records(0))
    try:
        if kind == "regular_file":
            standin.socket.write_bytes(b"")
        else:
            standin.socket.symlink_to(p.path)
        os.chown(standin.socket, svc.uid, svc.gid, follow_symlinks=False)
        proc = run(as_user(caller, standin.launcher), stdin=b"body\n")
        assert proc.returncode == 0, proc.stderr
        assert standin.report()["resuid"][0] != caller.uid
        assert _pending(p) == 0 and p.connections == []
    finally:
        p.close()


def test_no_new_privs_caller_hands_over_as_itself(peer, standin, caller):
    p = peer(records(0))
    proc = run(as_user(caller, standin.launcher, nnp=True), stdin=b"body\n")
    assert proc.returncode == 0, proc.stderr
    [got] = p.close()
    assert (got["uid"], got["gid"], got["stdin"]) == (caller.uid, caller.gid, b"body\n")
    assert not (standin.report_dir / "report.json").exists()


def test_a_caller_with_another_primary_group_is_seen_with_it(peer, standin, caller, svc):
    p = peer(records(0))
    other = User(caller.name, caller.uid, svc.gid)
    proc = run(as_user(other, standin.launcher), stdin=b"body\n")
    assert proc.returncode == 0, proc.stderr
    [got] = p.close()
    assert (got["uid"], got["gid"]) == (caller.uid, svc.gid)


def test_effective_ids_of_the_caller_do_not_change_who_it_is(peer, standin, caller):
    """Root that lowered only its effective ids is still root to the recorder: the real ids count, as on
    the exec path."""
    p = peer(records(0))
    code = (
        f"import os\nos.setresgid(-1, {caller.gid}, -1)\nos.setresuid(-1, {caller.uid}, -1)\n"
        f"os.execv({str(standin.launcher)!r}, ['sendmail'])\n"
    )
    proc = run([PYTHON, "-I", "-S", "-c", code], stdin=b"body\n")
    assert proc.returncode == 0, proc.stderr
    [got] = p.close()
    assert (got["uid"], got["gid"]) == (0, 0)
