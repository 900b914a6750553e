# SPDX-License-Identifier: MIT
"""Start a command as systemd starts a socket-activated service: the listening socket as fd 3, with
LISTEN_FDS=1 and LISTEN_PID naming the command's own pid (exec keeps it).

    python3 activate.py [--owner UID:GID] SOCKET COMMAND [ARG...]

SOCKET is bound here (a stale socket there is replaced), made mode 0666 and, with --owner, given to
UID:GID, as the package's socket unit does (SocketUser, SocketGroup, SocketMode). COMMAND runs with this
process's ids: to run it as another user, start it under setpriv.
"""

import os
import socket
import stat
import sys

LISTEN_FD = 3


def main(args):
    owner = None
    if args[:1] == ["--owner"]:
        owner = tuple(int(part) for part in args[1].split(":"))
        args = args[2:]
    path, command = args[0], args[1:]
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)  # noqa: S103 - anybody may connect, as to the package's socket
    if owner is not None:
        os.chown(path, *owner)
    listener.listen(socket.SOMAXCONN)
    if listener.fileno() != LISTEN_FD:
        os.dup2(listener.fileno(), LISTEN_FD)
    # dup2 onto itself keeps the close-on-exec flag that Python's sockets are created with.
    os.set_inheritable(LISTEN_FD, True)
    os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
    os.execvp(command[0], command)  # noqa: S606 - the command line is the caller's, as given


if __name__ == "__main__":
    main(sys.argv[1:])
