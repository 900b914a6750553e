# SPDX-License-Identifier: MIT
"""The launcher's side of the hand-off (docs/recorder.md), against a stand-in recorder the test controls.

The stand-in launcher's socket is a place no real recorder listens on; each test puts a peer there that
records what the launcher sent (header, argv block, fds, SO_PEERCRED) and answers as the test says: so
every branch of the launcher is reached, including the ones a sound recorder never takes (no greeting,
another greeting, no "A", silence, gone after "G"). A refused or untrusted hand-off must end in the exec
path (the stand-in entry reports), exactly once, and must leave no fd of the caller anywhere.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from launcher_support import PYTHON, Peer, User, as_user, handoff, records, run, wait_for, what_follows

pytestmark = pytest.mark.root

HANDOFF_WAIT_SECONDS = 10  # the launcher's budget for every wait before "G"


def closes_at_once(conn, got):
    """What the recorder does with a connection over its caller's share or its bound."""


def greets_with(greeting: bytes):
    """A peer that is not this launcher's recorder: another greeting, then it stops writing."""

    def answer(conn, got):
        conn.sendall(greeting)
        conn.shutdown(socket.SHUT_WR)
        got.update(what_follows(conn))

    return answer


def never_answers(conn, got):
    """A recorder stuck after the hand-off: the launcher must give up after its 10 seconds."""
    handoff(conn, got)
    got["after"] = what_follows(conn)["after"]


def gone_after_go(conn, got):
    handoff(conn, got)
    conn.sendall(b"A")
    got["go"] = conn.recv(1)


@pytest.fixture
def peer(standin, svc):
    peers = []

    def start(answer, owner: int | None = None, accepting: bool = True) -> Peer:
        peers.append(Peer(standin.socket, svc.uid if owner is None else owner, answer, accepting))
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
    assert (got["magic"], got["version"], got["argc"]) == (b"SSHM", 2, 1 + len(args))
    assert got["argv"] == [os.fsencode(str(mailq)), *map(os.fsencode, args)]
    assert (got["uid"], got["gid"]) == (caller.uid, caller.gid)
    assert len(got["fds"]) == 3
    assert (got["go"], got["stdin"]) == (b"G", b"Subject: hi\n\nbody\n")
    assert not (standin.report_dir / "report.json").exists(), "the exec path ran as well"


def test_only_fds_0_1_2_are_passed(peer, standin, caller):
    """An fd the caller holds (root's /etc/shadow, as a leaked one would be) never reaches the recorder."""
    targets = []

    def answer(conn, got):
        records(0)(conn, got)
        targets.extend(os.readlink(f"/proc/self/fd/{fd}") for fd in got["fds"])

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

    def answer(conn, got):
        handoff(conn, got)
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
    """The recorder refuses a caller over its share by closing before the greeting: no waiting then."""
    p = peer(closes_at_once)
    start = time.monotonic()
    proc = run(as_user(caller, standin.launcher, "ops@example.org"), stdin=b"body\n")
    assert time.monotonic() - start < HANDOFF_WAIT_SECONDS
    assert proc.returncode == 0, proc.stderr
    assert len(p.close()) == 1
    assert standin.report()["argv"][1:] == ["ops@example.org"]


@pytest.mark.parametrize("greeting", [b"SSHM\0\0\0\1", b"SSHN\0\0\0\2", b"SSHM\0\0\0", b""],
                         ids=["version_1", "other_magic", "short", "none"])  # fmt: skip
def test_without_the_greeting_nothing_is_sent_and_the_exec_path_runs(peer, standin, caller, greeting):
    p = peer(greets_with(greeting))
    proc = run(as_user(caller, standin.launcher, "ops@example.org"), stdin=b"body\n")
    assert proc.returncode == 0, proc.stderr
    [got] = p.close()
    assert (got["after"], got["fds"]) == (b"", [])
    assert standin.report()["argv"][1:] == ["ops@example.org"]


@pytest.mark.parametrize("accepting", [True, False], ids=["accepted_never_greeted", "never_accepted"])
def test_no_greeting_within_ten_seconds_leaves_no_fd_of_the_caller_anywhere(peer, standin, caller, accepting):
    """The caller reads the launcher's stdout to its end (as `out=$(echo x | sendmail ...)` does): it
    ends when the exec path's entry exits, while the peer still holds the connection the launcher gave up
    on, which carried no fd and no byte."""
    release = threading.Event()

    def holds_what_it_gets(conn, got):
        got.update(what_follows(conn))
        release.wait(60)

    p = peer(holds_what_it_gets, accepting=accepting)
    start = time.monotonic()
    try:
        proc = run(as_user(caller, standin.launcher), stdin=b"body\n")
    finally:
        release.set()
    assert time.monotonic() - start >= HANDOFF_WAIT_SECONDS
    assert proc.returncode == 0, proc.stderr
    assert standin.report()["resuid"][0] != caller.uid  # the exec path, dropped to the service user
    got = p.close() if accepting else p.backlog()
    assert [(g["after"], g["fds"]) for g in got] == [(b"", [])]


def test_the_handoff_runs_with_the_callers_ids_and_root_only_saved(peer, standin, caller, svc):
    """Root is kept only as the saved uid, to take back for the exec path: the caller's real ids are the
    effective ones from before the connection to after "G", while the peer holds each step."""
    steps = [threading.Event() for _ in range(4)]  # connected, released, handed off, released

    def answer(conn, got):
        steps[0].set()
        steps[1].wait(30)
        handoff(conn, got)
        steps[2].set()
        steps[3].wait(30)
        conn.sendall(b"A")
        got["go"] = conn.recv(1)
        conn.sendall(b"\0")

    p = peer(answer)
    proc = subprocess.Popen(as_user(caller, standin.launcher), stdin=subprocess.DEVNULL, env={})
    try:
        for held, release in (steps[0:2], steps[2:4]):
            wait_for(held.is_set)
            status = _status(proc.pid)
            assert f"Uid:\t{caller.uid}\t{caller.uid}\t0\t{caller.uid}\n" in status
            assert f"Gid:\t{caller.gid}\t{caller.gid}\t{svc.gid}\t{caller.gid}\n" in status
            release.set()
    finally:
        for step in steps:
            step.set()
        assert proc.wait(timeout=30) == 0
    [got] = p.close()
    assert (got["pid"], got["uid"], got["gid"], got["go"]) == (proc.pid, caller.uid, caller.gid, b"G")
    assert len(got["fds"]) == 3


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
    assert p.backlog() == [], "the launcher connected to a socket it must not trust"


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
        assert p.backlog() == [] and p.connections == []
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
