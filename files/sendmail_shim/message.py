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
            chunk = os.read(fd, CHUNK)
            if not chunk:
                return
            sink.feed(chunk)
    # A virtual newline before the first byte makes a dot on the first line a line like any other. The
    # last three bytes stay held back: they may be the start of "\n.\r\n".
    held = b"\n"
    virtual = True
    while True:
        chunk = os.read(fd, CHUNK)
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
