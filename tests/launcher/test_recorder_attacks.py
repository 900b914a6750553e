# SPDX-License-Identifier: MIT
"""A caller that speaks to the recorder's socket itself (it is mode 0666), without the launcher.

Each attack runs as the unprivileged test caller against the real recorder, which greets first: a
malformed hand-off is refused without another byte and every descriptor it passed is closed; a
hand-off left without "G" is dropped unread; nothing of it reaches the log; the recorder goes on
serving; and a client that does speak the protocol is recorded as the kernel names it, whatever it
sends.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from launcher_support import PYTHON, as_user, run

pytestmark = pytest.mark.root

MESSAGE = b"From: app@example.org\nTo: ops@example.org\nSubject: direct\n\nbody\n"

# Run as the caller: connects, plays `case`, then reports what the recorder answered and whether it let
# go of the passed descriptors (our pipe's read end sees EOF only once every copy of the write end,
# the recorder's included, is closed).
CLIENT = textwrap.dedent(r"""
    import array, fcntl, json, os, select, socket, struct, sys, termios, time

    path, case = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(15)
    greeting = b""
    while len(greeting) < 8 and (part := s.recv(8 - len(greeting))):
        greeting += part
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    os.write(stdin_w, b"Subject: direct\n\nbody\n")
    fds = [stdin_r, out_w, out_w]
    magic, version, argc, block = b"SSHM", 2, 2, b"sendmail\0ops@example.org\0"
    size = len(block)
    if case == "bad_magic":
        magic = b"SMTP"
    elif case == "bad_version":
        version = 1
    elif case == "huge_block":
        size, block = (4 << 20) + 1, b""
    elif case == "argc_mismatch":
        argc = 3
    elif case == "four_fds":
        fds = fds + [out_w]
    elif case == "two_fds":
        fds = fds[:2]
    header = struct.pack(">4sIII", magic, version, argc, size)
    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
    if case == "no_fds":
        rights = []
    if case == "silent":
        pass
    elif case == "short":
        s.sendmsg([header[:7]], rights)
    else:
        s.sendmsg([header + block], rights)
    for fd in (stdin_r, out_w):
        os.close(fd)
    started = time.monotonic()
    try:
        reply = s.recv(1)
    except ConnectionResetError:  # closed with our bytes unread: no byte either
        reply = b""
    go_answer = None
    if reply == b"A" and case in ("no_go", "sound"):
        if case == "sound":
            s.sendall(b"G")
            os.close(stdin_w)
            stdin_w = None
        go_answer = s.recv(1)
    closed = bool(select.select([out_r], [], [], 10)[0]) and os.read(out_r, 1) == b""
    unread = None
    if stdin_w is not None:
        buf = array.array("i", [0])
        fcntl.ioctl(stdin_w, termios.FIONREAD, buf)
        unread = buf[0]
    print(json.dumps({"greeting": greeting.hex(), "reply": reply.hex(),
                      "after": go_answer.hex() if go_answer is not None else None,
                      "seconds": time.monotonic() - started, "fds_closed": closed, "unread": unread}))
""")


def attack(shim, caller, case: str) -> dict:
    proc = run(as_user(caller, PYTHON, "-I", "-S", "-c", CLIENT, shim.recorder.socket, case))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["greeting"] == (b"SSHM" + (2).to_bytes(4, "big")).hex(), "no greeting first"
    return got


def still_serves(shim, caller) -> None:
    assert shim.recorder.proc.poll() is None, "the recorder died"
    proc = run(as_user(caller, shim.launcher, "ops@example.org"), stdin=MESSAGE)
    assert proc.returncode == 0, proc.stderr
    [rec] = shim.records()
    assert rec["email"]["subject"] == "direct"


MALFORMED = ["bad_magic", "bad_version", "huge_block", "argc_mismatch", "four_fds", "two_fds", "no_fds",
             "short"]  # fmt: skip


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_handoff_is_refused_without_a_byte_and_its_fds_closed(recorder_shim, caller, case):
    got = attack(recorder_shim, caller, case)
    assert got["reply"] == "", "the recorder answered a malformed hand-off"
    assert got["fds_closed"], "the recorder kept a descriptor of a refused hand-off"
    assert recorder_shim.any_records() == []
    still_serves(recorder_shim, caller)


def test_a_silent_connection_is_dropped_after_the_handoff_time(recorder_shim, caller):
    got = attack(recorder_shim, caller, "silent")
    assert got["reply"] == ""
    assert 4 <= got["seconds"] < 12
    still_serves(recorder_shim, caller)


def test_no_go_leaves_the_callers_stdin_unread(recorder_shim, caller):
    """After "A" without "G" the fds are not the recorder's to read: the exec path may have them."""
    got = attack(recorder_shim, caller, "no_go")
    assert (got["reply"], got["after"]) == ("41", "")  # "A", then closed without a status
    assert got["unread"] == len(b"Subject: direct\n\nbody\n")
    assert got["fds_closed"]
    assert recorder_shim.any_records() == []
    still_serves(recorder_shim, caller)


def test_a_client_of_its_own_is_recorded_as_the_kernel_names_it(recorder_shim, caller):
    got = attack(recorder_shim, caller, "sound")
    assert (got["reply"], got["after"]) == ("41", "00")
    [rec] = recorder_shim.records()
    assert rec["user"] == {"id": str(caller.uid), "name": caller.name}
    assert rec["group"] == {"id": str(caller.gid)}
