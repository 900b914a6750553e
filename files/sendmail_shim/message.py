"""Reading the message: streamed, at most `cap` bytes kept, every byte counted and hashed."""

import os

try:
    # The C sha256 that hashlib would wrap, without hashlib's start-up cost (OpenSSL set-up).
    from _sha2 import sha256  # Python 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # Python 3.9 to 3.11
    except ImportError:
        from hashlib import sha256

CHUNK = 1 << 16


def read_chunk(fd):
    """Up to CHUNK bytes from `fd`, b"" at end of input. A caller may hand over a pipe with O_NONBLOCK set
    (event-loop programs do): then wait until it is readable. The flags are never changed, since the
    file description is shared with the caller."""
    while True:
        try:
            return os.read(fd, CHUNK)
        except BlockingIOError:
            import select  # noqa: PLC0415 - only a non-blocking stdin needs it

            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.poll()


class LineReader:
    """readline() over a file descriptor through read_chunk, for the SMTP session."""

    def __init__(self, fd):
        self.fd = fd
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
            chunk = read_chunk(self.fd)
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


def read(fd, sink, dot_ends):
    """Feed everything from `fd` to `sink`; with `dot_ends`, stop at a line holding only "." (sendmail
    without -i/-oi), which is not part of the message. Input after that line is left unread, as sendmail
    does.
    """
    if not dot_ends:
        while True:
            chunk = read_chunk(fd)
            if not chunk:
                return
            sink.feed(chunk)
    # A virtual newline before the first byte makes a dot on the first line a line like any other. The
    # last three bytes stay held back: they may be the start of "\n.\r\n".
    held = b"\n"
    virtual = True
    while True:
        chunk = read_chunk(fd)
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
