# SPDX-License-Identifier: MIT
"""The resident recorder: takes each message over a UNIX socket from the launcher, learns the caller from
the kernel (SO_PEERCRED) and records it with the shim's own core. docs/recorder.md is the contract.

    python3 -I -S <libdir>/sendmail_shim/recorder.py [--socket PATH]

Without --socket the listening socket is systemd's (LISTEN_FDS, fd 3), and systemd starts the recorder as
the service user. With it (runs without root only: the host's test suites) the recorder binds PATH itself.
"""

import os
import sys

if not __package__:
    # Run by path (python3 -I -S .../recorder.py): nothing put the package's parent directory on sys.path.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bisect
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
VERSION = 2
HEADER = struct.Struct(">4sIII")
GREETING = MAGIC + struct.pack(">I", VERSION)
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
SUBUID_PATH = "/etc/subuid"
# A uid refused again within this many seconds is not logged again: refusals cost no journal flood.
REFUSAL_LOG_SECONDS = 60


class Refused(Exception):
    """A hand-off not as the contract has it: the connection is closed without an "A"."""


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


def parse_subuid(text, uid_of):
    """The ranges of an /etc/subuid text as sorted (first, last, owner uid) triples. `uid_of(name)` is the
    owner's uid, None when unknown. Lines that do not parse are skipped, and so are ranges owned by root: a
    subordinate uid never gets root's share."""
    ranges = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or not fields[1].isdigit() or not fields[2].isdigit() or int(fields[2]) < 1:
            continue
        owner = int(fields[0]) if fields[0].isdigit() else uid_of(fields[0])
        if owner:
            first = int(fields[1])
            ranges.append((first, first + int(fields[2]) - 1, owner))
    return sorted(ranges)


def owner_of(uid, ranges):
    """Who `uid` counts as: the owner of the subordinate range it lies in, else itself."""
    index = bisect.bisect_right(ranges, (uid, float("inf"), 0)) - 1
    if index >= 0 and ranges[index][0] <= uid <= ranges[index][1]:
        return ranges[index][2]
    return uid


def _uid_of(name):
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


class SubordinateIds:
    """/etc/subuid, read again when it changes: newuidmap lets a user act as any uid of its ranges."""

    def __init__(self, path=SUBUID_PATH):
        self.path = path
        self._seen = None
        self._ranges = []

    def owner_of(self, uid):
        try:
            info = os.stat(self.path)
            seen = (info.st_ino, info.st_mtime_ns, info.st_size)
            if seen != self._seen:
                with open(self.path, encoding="utf-8", errors="replace") as f:
                    self._ranges = parse_subuid(f.read(), _uid_of)
                self._seen = seen
        except FileNotFoundError:
            self._seen, self._ranges = None, []
        except OSError as exc:
            # The last ranges read stay in force: a passing error must not free every subordinate uid.
            log(f"cannot read {self.path}: {exc}")
        return owner_of(uid, self._ranges)


class Shares:
    """The connections held, by owner uid: root's share of the bound is kept apart from all other uids,
    and each other uid holds at most its own share (docs/recorder.md, "Shares")."""

    def __init__(self, bound):
        self.bound = bound
        self.root_share = max(1, bound // 8)
        self.uid_share = max(1, bound // 8)
        self._held = {}
        self._lock = threading.Lock()

    def take(self, owner):
        """Count a connection of `owner`: None, or why it may not have one."""
        with self._lock:
            total = sum(self._held.values())
            if total >= self.bound:
                return f"all {self.bound} connections are held"
            if owner != 0:
                others = total - self._held.get(0, 0)
                if others >= self.bound - self.root_share:
                    return f"uids other than root hold their {self.bound - self.root_share} connections"
                if self._held.get(owner, 0) >= self.uid_share:
                    return f"it holds its share of {self.uid_share} connections"
            self._held[owner] = self._held.get(owner, 0) + 1
            return None

    def give_back(self, owner):
        with self._lock:
            self._held[owner] -= 1
            if not self._held[owner]:
                del self._held[owner]


class Recorder:
    """Accepts every connection at once and decides by the peer's uid: over its share it closes the
    connection unanswered (the launcher takes the exec path at once), else greets it on a thread of its
    own."""

    def __init__(self, listener, max_connections, bound_path=None):
        self.listener = listener
        self.bound_path = bound_path
        self.shares = Shares(max_connections)
        self.subordinates = SubordinateIds()
        self.writers = LogWriters()
        self.stopping = False
        self._refusals_logged = {}

    def _stop(self, signum, frame):
        self.stopping = True

    def serve(self):
        """Until SIGTERM (or SIGINT): then stop accepting, finish the messages held, return 0."""
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.listener.setblocking(False)
        poller = select.poll()
        poller.register(self.listener.fileno(), select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        while not self.stopping:
            ready = {fd for fd, _ in poller.poll()}
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
            if self.listener.fileno() in ready and not self.stopping:
                self._accept_one()
        self.listener.close()
        if self.bound_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.bound_path)
        for thread in threading.enumerate():
            if thread is not threading.current_thread():
                thread.join()
        return EX_OK

    def _accept_one(self):
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        except OSError as exc:
            log(f"accept: {exc}")
            return
        try:
            peer = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        except OSError as exc:
            log(f"connection from an unknown peer: {exc}")
            conn.close()
            return
        owner = self.subordinates.owner_of(peer[1])
        refusal = self.shares.take(owner)
        if refusal is not None:
            # Closed unanswered, on this thread: a refusal costs neither a thread nor a wait.
            conn.close()
            self._log_refusal(peer, owner, refusal)
            return
        try:
            threading.Thread(target=self._connection, args=(conn, peer, owner)).start()
        except RuntimeError as exc:
            # No thread to be had (a task limit): this caller takes the exec path, no greeting.
            log(f"cannot start a thread: {exc}")
            conn.close()
            self.shares.give_back(owner)

    def _log_refusal(self, peer, owner, refusal):
        now = time.monotonic()
        if now - self._refusals_logged.get(owner, -REFUSAL_LOG_SECONDS) < REFUSAL_LOG_SECONDS:
            return
        self._refusals_logged = {
            uid: when for uid, when in self._refusals_logged.items() if now - when < REFUSAL_LOG_SECONDS
        }
        self._refusals_logged[owner] = now
        counted = "" if owner == peer[1] else f", counted as uid {owner} (its subordinate range)"
        log(
            f"refused {_who(peer)}{counted}: {refusal}; it takes the exec path"
            f" (its next refusals within {REFUSAL_LOG_SECONDS} s are not logged)"
        )

    def _connection(self, conn, peer, owner):
        with conn:
            try:
                status = _serve_one(conn, peer, self.writers)
            finally:
                # Given back before the status: the launcher's next message then finds its share free.
                self.shares.give_back(owner)
            if status is not None:
                try:
                    conn.sendall(bytes([status]))
                except OSError as exc:
                    log(f"connection from {_who(peer)}: {exc}")


def _serve_one(conn, peer, writers):
    """Greet, take the hand-off, record the message: its exit status, or None when there is none to send."""
    fds = []
    try:
        conn.settimeout(HANDOFF_SECONDS)
        conn.sendall(GREETING)
        argv = _receive(conn, fds)
        conn.sendall(b"A")
        if not _go(conn):
            # The launcher went its own way (exec path): the fds are not ours to read.
            raise Refused(f'no "G" within {GO_SECONDS:g} seconds of the "A"')
        conn.settimeout(None)
        _without_datagram_outputs(fds)
        return _record(argv, peer, fds, writers)
    except Refused as exc:
        log(f"hand-off from {_who(peer)} refused: {exc}")
    except OSError as exc:
        log(f"connection from {_who(peer)}: {exc}")
    except Exception as exc:  # noqa: BLE001 - one connection's failure must not end the others
        log(f"connection from {_who(peer)}: {type(exc).__name__}: {exc}")
    finally:
        # The caller's streams are released before the launcher can exit with the status.
        _close_all(fds)
    return None


def _without_datagram_outputs(fds):
    """The caller's stdout and stderr become /dev/null where they are datagram or seqpacket sockets: each
    write there is a message stamped with the writer's credentials (the journal's _UID), and the recorder
    must not lend its own to the caller's text."""
    for index in (1, 2):
        if not stat.S_ISSOCK(os.fstat(fds[index]).st_mode):
            continue
        with socket.socket(fileno=os.dup(fds[index])) as sock:
            kind = sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
        if kind in (socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
            null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            os.close(fds[index])
            fds[index] = null


def _who(peer):
    return "pid {} uid {} gid {}".format(*peer)


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


def _bind(path):
    """Listen on `path` (a stale socket there is replaced)."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    # Anybody may hand over a message: the identity comes from the kernel, not from the socket's mode.
    os.chmod(path, 0o666)  # noqa: S103
    listener.listen(socket.SOMAXCONN)
    return listener


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    if args and (len(args) != 2 or args[0] != "--socket"):
        sys.stderr.write("usage: recorder.py [--socket PATH]\n")
        return EX_USAGE
    if args and os.geteuid() == 0:
        log("--socket is for runs without root; as root the socket comes from systemd (LISTEN_FDS)")
        return EX_USAGE
    logwriter.ignore_file_size_signal()
    cfg, problems = config.from_environ(os.environ)
    for problem in problems:
        log(f"{problem} (messages go to the fallback until it is fixed)")
    try:
        if args:
            listener = _bind(args[1])
        else:
            listener = _activated()
            if listener is None:
                log("no socket: systemd passed none (LISTEN_FDS) and no --socket PATH was given")
                return EX_USAGE
    except OSError as exc:
        log(f"cannot listen: {exc}")
        return EX_OSERR
    return Recorder(listener, cfg.recorder_max_connections, args[1] if args else None).serve()


if __name__ == "__main__":
    sys.exit(main())
