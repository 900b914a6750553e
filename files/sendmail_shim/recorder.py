"""The resident recorder: takes each message over a UNIX socket from the launcher, learns the caller from
the kernel (SO_PEERCRED) and records it with the shim's own core. docs/recorder.md is the contract.

    python3 -I -S <libdir>/sendmail_shim/recorder.py [--socket PATH]

Without --socket the listening socket is systemd's (LISTEN_FDS, fd 3). With it, the recorder binds PATH:
started as root it gives the socket to the config's service_user and becomes that user for good before
it accepts anything.
"""

import os
import sys

if not __package__:
    # Run by path (python3 -I -S .../recorder.py): nothing put the package's parent directory on sys.path.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import contextlib
import pwd
import select
import signal
import socket
import stat
import struct
import threading
import time

from sendmail_shim import config, core, identity, logwriter, message
from sendmail_shim.sysexits import EX_OK, EX_OSERR, EX_USAGE

MAGIC = b"SSHM"
VERSION = 1
HEADER = struct.Struct(">4sIII")
PASSED_FDS = 3
MAX_ARGV_BYTES = 4 << 20
HANDOFF_SECONDS = 5.0
GO_SECONDS = 5.0
# Records built at once: building one of max_line_bytes makes several copies of it (docs/recorder.md).
BUILDS_AT_ONCE = 2
# Room for a caller that sends more descriptors than it should: they arrive, and are closed, instead of
# being cut off by the kernel unseen (MSG_CTRUNC is refused as well).
_FD_ROOM = socket.CMSG_SPACE(64 * 4)
_PEERCRED = struct.Struct("3i")
_FIRST_FD = 3


class Refused(Exception):
    """A hand-off not as the contract has it: the connection is closed without a byte."""


def log(line):
    """One line to the recorder's own stderr (the journal under systemd)."""
    data = f"sendmail-shim-recorder: {line}\n".encode("utf-8", "replace")
    with contextlib.suppress(OSError):
        os.write(2, data)


class LogWriters:
    """The recorder's writer (core.ExecWriter's stand-in): one append at a time per log, which still
    takes the lock exec-path writers take; and at most BUILDS_AT_ONCE records built at once."""

    def __init__(self):
        self._locks = {}
        self._locks_guard = threading.Lock()
        self._builds = threading.BoundedSemaphore(BUILDS_AT_ONCE)

    def building(self):
        return self._builds

    def append(self, path, line):
        with self._locks_guard:
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:
            logwriter.append(path, line)


def _remaining(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise Refused("the hand-off was not complete within the time allowed")
    return left


def _take_fds(ancdata, fds):
    """Collect the descriptors of `ancdata` into `fds` (so that all get closed); the SCM_RIGHTS count."""
    messages = 0
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            messages += 1
            count = len(payload) // 4
            fds.extend(struct.unpack(f"{count}i", payload[: count * 4]))
    return messages


def _receive(conn, fds):
    """The hand-off's argv; the passed descriptors land in `fds`. Refused when it breaks the contract."""
    try:
        return _receive_within(conn, fds)
    except TimeoutError:
        raise Refused(f"not complete within {HANDOFF_SECONDS:g} seconds") from None


def _receive_within(conn, fds):
    deadline = time.monotonic() + HANDOFF_SECONDS
    header = b""
    rights = 0
    while len(header) < HEADER.size:
        conn.settimeout(_remaining(deadline))
        data, ancdata, flags, _ = conn.recvmsg(HEADER.size - len(header), _FD_ROOM, socket.MSG_CMSG_CLOEXEC)
        rights += _take_fds(ancdata, fds)
        if flags & socket.MSG_CTRUNC:
            raise Refused("descriptors cut off (too many)")
        if not data:
            raise Refused("connection closed within the header")
        header += data
    magic, version, argc, size = HEADER.unpack(header)
    if magic != MAGIC or version != VERSION:
        raise Refused(f"bad magic or version {magic!r} {version}")
    if size > MAX_ARGV_BYTES:
        raise Refused(f"argv block of {size} bytes")
    if rights != 1 or len(fds) != PASSED_FDS:
        raise Refused(f"{len(fds)} descriptors in {rights} messages, not {PASSED_FDS} in one")
    block = bytearray(size)
    view = memoryview(block)
    got = 0
    while got < size:
        conn.settimeout(_remaining(deadline))
        count = conn.recv_into(view[got:])
        if not count:
            raise Refused("connection closed within the argv block")
        got += count
    if argc != block.count(0) or (size and block[-1] != 0):
        raise Refused(f"argv block does not hold {argc} NUL-terminated strings")
    return [os.fsdecode(bytes(arg)) for arg in block.split(b"\0")[:argc]]


def _go(conn):
    conn.settimeout(GO_SECONDS)
    try:
        return conn.recv(1) == b"G"
    except TimeoutError:
        return False


def _record(argv, peer, fds, writers):
    """Handle the message with the caller the kernel named; the exit status."""
    pid, uid, gid = peer
    # Read per message, as the exec path does: a changed config applies to the next message.
    cfg, problems = config.from_environ(os.environ)
    parent_pid, parent_name = identity.parent_of(pid)
    caller = core.Caller(
        uid, gid, identity.user_name(uid), pid, parent_pid=parent_pid, parent_name=parent_name
    )
    inv = core.Invocation(
        core.Origin(argv, caller, config.hostname(cfg), "recorder"), core.Fds(*fds), cfg,
        config_problems=problems,
        budget=message.Budget(cfg.recorder_max_input_bytes, cfg.recorder_max_input_seconds),
        writer=writers,
    )  # fmt: skip
    return core.handle(inv)


def _close_all(fds):
    while fds:
        with contextlib.suppress(OSError):
            os.close(fds.pop())


class Recorder:
    """Accepts while it has a free slot (past recorder_max_connections callers wait in the backlog);
    one thread per connection."""

    def __init__(self, listener, max_connections, bound_path=None):
        self.listener = listener
        self.bound_path = bound_path
        self.slots = threading.BoundedSemaphore(max_connections)
        self.writers = LogWriters()
        self.stopping = False

    def _stop(self, signum, frame):
        self.stopping = True

    def serve(self):
        """Until SIGTERM (or SIGINT): then stop accepting, finish the messages held, return 0."""
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        poller = select.poll()
        poller.register(self.listener.fileno(), select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        while not self.stopping:
            # A slot before accept: past the bound, callers wait in the backlog, not in our memory.
            if not self.slots.acquire(timeout=0.5):
                continue
            if not self._accept_one(poller, wake_r):
                self.slots.release()
        self.listener.close()
        if self.bound_path is not None:
            # A recorder that dropped root may not: then the next start replaces the stale socket.
            with contextlib.suppress(OSError):
                os.unlink(self.bound_path)
        for thread in threading.enumerate():
            if thread is not threading.current_thread():
                thread.join()
        return EX_OK

    def _accept_one(self, poller, wake_r):
        """Wait for a connection and start its thread; False when stopping instead."""
        while not self.stopping:
            ready = {fd for fd, _ in poller.poll()}
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
            if self.listener.fileno() in ready and not self.stopping:
                try:
                    conn, _ = self.listener.accept()
                except OSError as exc:
                    log(f"accept: {exc}")
                    continue
                try:
                    threading.Thread(target=self._connection, args=(conn,)).start()
                except RuntimeError as exc:
                    # No thread to be had (a task limit): this caller takes the exec path, no "A".
                    log(f"cannot start a thread: {exc}")
                    conn.close()
                    return False
                return True
        return False

    def _connection(self, conn):
        fds = []
        peer = None
        try:
            peer = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
            argv = _receive(conn, fds)
            conn.sendall(b"A")
            if not _go(conn):
                # The launcher went its own way (exec path): the fds are not ours to read.
                raise Refused(f'no "G" within {GO_SECONDS:g} seconds of the "A"')
            conn.settimeout(None)
            status = _record(argv, peer, fds, self.writers)
            # The caller's streams are released before the launcher can exit with the status.
            _close_all(fds)
            conn.sendall(bytes([status]))
        except Refused as exc:
            log(f"hand-off from {_who(peer)} refused: {exc}")
        except OSError as exc:
            log(f"connection from {_who(peer)}: {exc}")
        except Exception as exc:  # noqa: BLE001 - one connection's failure must not end the others
            log(f"connection from {_who(peer)}: {type(exc).__name__}: {exc}")
        finally:
            _close_all(fds)
            conn.close()
            self.slots.release()


def _who(peer):
    return "an unknown peer" if peer is None else "pid {} uid {} gid {}".format(*peer)


def _activated():
    """systemd's listening socket (fd 3), or None when systemd passed none to this process."""
    count = os.environ.get("LISTEN_FDS", "")
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or not count.isdigit() or int(count) < 1:
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    listener = socket.socket(fileno=_FIRST_FD)
    listener.set_inheritable(False)
    if listener.family != socket.AF_UNIX or listener.type != socket.SOCK_STREAM:
        raise OSError("the socket systemd passed is not a UNIX stream socket")
    return listener


def _drop_to(user):
    """Become `user` for good: no supplementary groups, its gid, its uid; verified."""
    if user.pw_uid == 0:
        log("service_user is root: running as root")
        return
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    ids = (os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups())
    if ids[:4] != (user.pw_uid, user.pw_uid, user.pw_gid, user.pw_gid) or ids[4] not in ([], [user.pw_gid]):
        raise OSError(f"the switch to {user.pw_name} did not hold: {ids}")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise OSError("root could be taken back after the switch")


def _bind(path, service_user):
    """Listen on `path` (a stale socket there is replaced); as root, then become `service_user`."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    user = pwd.getpwnam(service_user) if os.geteuid() == 0 else None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    # Anybody may hand over a message: the identity comes from the kernel, not from the socket's mode.
    os.chmod(path, 0o666)  # noqa: S103
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)
        _drop_to(user)
    listener.listen(socket.SOMAXCONN)
    return listener


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    if args and (len(args) != 2 or args[0] != "--socket"):
        sys.stderr.write("usage: recorder.py [--socket PATH]\n")
        return EX_USAGE
    logwriter.ignore_file_size_signal()
    cfg, problems = config.from_environ(os.environ)
    for problem in problems:
        log(f"{problem} (messages go to the fallback until it is fixed)")
    try:
        if args:
            listener = _bind(args[1], cfg.service_user)
        else:
            listener = _activated()
            if listener is None:
                log("no socket: systemd passed none (LISTEN_FDS) and no --socket PATH was given")
                return EX_USAGE
    except (OSError, KeyError) as exc:
        log(f"cannot listen: {exc}")
        return EX_OSERR
    return Recorder(listener, cfg.recorder_max_connections, args[1] if args else None).serve()


if __name__ == "__main__":
    sys.exit(main())
