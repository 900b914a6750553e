# SPDX-License-Identifier: MIT
"""The caller's descriptors: the message read from one (streamed, at most `cap` bytes kept, every byte
counted and hashed, within the recorder's budget), replies written to another. Their flags are never
changed: the file descriptions are shared with the caller."""

import os
import time

try:
    # The C sha256 that hashlib would wrap, without hashlib's start-up cost (OpenSSL set-up).
    from _sha2 import sha256  # Python 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # Python 3.9 to 3.11
    except ImportError:
        from hashlib import sha256

CHUNK = 1 << 16


def _wait(fd, writable=False, timeout_ms=-1):
    """poll() `fd` until it is readable (writable); False when `timeout_ms` ran out first."""
    import select  # noqa: PLC0415 - only a non-blocking fd or the recorder's budget needs it

    poller = select.poll()
    poller.register(fd, select.POLLOUT if writable else select.POLLIN)
    return bool(poller.poll(timeout_ms))


class Budget:
    """What the recorder lets one caller's input take: `max_bytes` read and `max_seconds` from the start
    (a stdin that never ends holds its own connection, not a CPU). `stopped` says which one ran out."""

    def __init__(self, max_bytes, max_seconds):
        self.max_bytes = max_bytes
        self.deadline = time.monotonic() + max_seconds
        self.read_bytes = 0
        self.stopped = None

    def remaining_ms(self):
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    def read_chunk(self, fd):
        """Up to CHUNK bytes of `fd`; b"" at end of input, and from when the budget ran out."""
        if self.stopped:
            return b""
        # At the byte budget, one byte more tells an input that ends there from one that goes on.
        size = min(CHUNK, self.max_bytes - self.read_bytes) or 1
        while True:
            # The deadline is looked at on every read: an input that is always ready (/dev/zero) never
            # makes poll() wait.
            remaining = self.remaining_ms()
            if not remaining or not _wait(fd, timeout_ms=remaining):
                self.stopped = "seconds"
                return b""
            try:
                data = os.read(fd, size)
            except BlockingIOError:
                continue
            if data and self.read_bytes >= self.max_bytes:
                self.stopped = "bytes"
                return b""
            self.read_bytes += len(data)
            return data

    def write_some(self, fd, view):
        """Write a part of `view` if `fd` takes it before the deadline; the count written, 0 when it did
        not. At most PIPE_BUF bytes at once: a pipe that polled writable takes that much without blocking."""
        while _wait(fd, writable=True, timeout_ms=self.remaining_ms()):
            try:
                return os.write(fd, view[:4096])
            except BlockingIOError:
                continue
        return 0


def read_chunk(fd, budget=None):
    """Up to CHUNK bytes from `fd`, b"" at end of input. A caller may hand over a pipe with O_NONBLOCK set
    (event-loop programs do): then wait until it is readable."""
    if budget is not None:
        return budget.read_chunk(fd)
    while True:
        try:
            return os.read(fd, CHUNK)
        except BlockingIOError:
            _wait(fd)


def write_all(fd, data, budget=None):
    """Write all of `data` to `fd`, waiting on a non-blocking one. Raises OSError (TimeoutError when the
    budget's deadline came first)."""
    view = memoryview(data)
    while view:
        if budget is not None:
            written = budget.write_some(fd, view)
            if not written:
                raise TimeoutError("the caller did not take the output within the time budget")
        else:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                _wait(fd, writable=True)
                continue
        view = view[written:]


class LineReader:
    """readline() over a file descriptor through read_chunk, for the SMTP session."""

    def __init__(self, fd, budget=None):
        self.fd = fd
        self.budget = budget
        self._buf = b""
        self._eof = False

    def readline(self, limit):
        """The next line with its newline, at most `limit` bytes of it; b"" at end of input."""
        while True:
            end = self._buf.find(b"\n", 0, limit)
            if end >= 0:
                return self._take(end + 1)
            if len(self._buf) >= limit or self._eof:
                return self._take(min(limit, len(self._buf)))
            chunk = read_chunk(self.fd, self.budget)
            if chunk:
                self._buf += chunk
            else:
                self._eof = True

    def _take(self, size):
        line, self._buf = self._buf[:size], self._buf[size:]
        return line


class Sink:
    """Keeps the first `cap` bytes fed to it and counts and hashes all of them."""

    def __init__(self, cap):
        self.cap = cap
        self.kept = bytearray()
        self.total = 0
        # "bytes" or "seconds" when the recorder's budget stopped the reading before the input ended.
        self.budget_exceeded = None
        self._hash = sha256()

    def feed(self, data):
        self.total += len(data)
        self._hash.update(data)
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += data[:room]

    @property
    def truncated(self):
        return self.total > len(self.kept)

    def hexdigest(self):
        return self._hash.hexdigest()


def _dot_line_end(buf):
    """Index of the newline before the first lone-dot line in `buf`, or -1."""
    ends = [k for k in (buf.find(b"\n.\n"), buf.find(b"\n.\r\n")) if k >= 0]
    return min(ends) if ends else -1


def read(fd, sink, dot_ends, budget=None):
    """Feed everything from `fd` to `sink`; with `dot_ends`, stop at a line holding only "." (sendmail
    without -i/-oi), which is not part of the message. Input after that line is left unread, as sendmail
    does.
    """
    if not dot_ends:
        while True:
            chunk = read_chunk(fd, budget)
            if not chunk:
                return
            sink.feed(chunk)
    # A virtual newline before the first byte makes a dot on the first line a line like any other. The
    # last three bytes stay held back: they may be the start of "\n.\r\n".
    held = b"\n"
    virtual = True
    while True:
        chunk = read_chunk(fd, budget)
        buf = held + chunk
        done = True
        if not chunk:
            if buf.endswith(b"\n."):
                buf = buf[:-1]
            elif buf.endswith(b"\n.\r"):
                buf = buf[:-2]
            out = buf
        else:
            end = _dot_line_end(buf)
            if end >= 0:
                out = buf[: end + 1]
            else:
                cut = max(0, len(buf) - 3)
                out, held = buf[:cut], buf[cut:]
                done = False
        if virtual and out:
            out = out[1:]
            virtual = False
        if out:
            sink.feed(out)
        if done:
            return
