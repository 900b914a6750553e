# SPDX-License-Identifier: MIT
"""The launcher's socket side, in Python: hands this process's fds 0, 1 and 2 and its argv to a recorder
(docs/recorder.md) and exits with the recorder's status, so that unprivileged suites run the recorder
path without the setuid launcher.

    python3 handoff.py SOCKET ARGV0 [ARG...]

Exit status: the recorder's; 71 when the connection ended after "G" without one (as the launcher);
69 when no recorder took the hand-off (no socket, refused, no greeting, closed or no "A"), where the
launcher would take the exec path instead. As the launcher, it sends its fds only after the greeting.
"""

import os
import socket
import struct
import sys

HEADER = struct.Struct(">4sIII")
VERSION = 2
GREETING = b"SSHM" + struct.pack(">I", VERSION)
EX_UNAVAILABLE = 69
EX_OSERR = 71
ACCEPT_SECONDS = 10


def _standard_streams():
    """Closed fds 0, 1 and 2 become /dev/null, as the launcher makes them before the hand-off."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)


def hand_over(path, argv):
    _standard_streams()
    block = b"".join(os.fsencode(arg) + b"\0" for arg in argv)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(ACCEPT_SECONDS)
        sock.connect(path)
        greeting = b""
        while len(greeting) < len(GREETING) and (part := sock.recv(len(GREETING) - len(greeting))):
            greeting += part
        if greeting != GREETING:
            sys.stderr.write(f"handoff: no greeting from the recorder: {greeting!r}\n")
            return EX_UNAVAILABLE
        header = HEADER.pack(b"SSHM", VERSION, len(argv), len(block))
        sock.sendmsg([header], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("3i", 0, 1, 2))])
        sock.sendall(block)
        if sock.recv(1) != b"A":
            return EX_UNAVAILABLE
    except OSError as exc:
        sys.stderr.write(f"handoff: no recorder took the message: {exc}\n")
        return EX_UNAVAILABLE
    # From "G" on the recorder owns the message: wait as long as it takes.
    sock.settimeout(None)
    try:
        sock.sendall(b"G")
        status = sock.recv(1)
    except OSError:
        status = b""
    if not status:
        sys.stderr.write("handoff: the recorder ended the connection without a status\n")
        return EX_OSERR
    return status[0]


if __name__ == "__main__":
    sys.exit(hand_over(sys.argv[1], sys.argv[2:]))
