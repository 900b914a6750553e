# SPDX-License-Identifier: MIT
"""Keeping a record that the log could not take: syslog through its unix datagram socket (/dev/log,
where journald or rsyslog listen), and stderr when even that fails.

Syslog daemons cut long messages (rsyslog at 8 KiB by default, RFC 3164 relays at 1 KiB), so the record
goes in numbered parts of CHUNK_CHARS characters, each "ID i/n PART" with the event id. The parts are
pure ASCII JSON: non-ASCII, control characters and DEL escaped, so no daemon rewrites them. Joining the
PART of 1/n..n/n gives back the record (docs/record.md shows how).
"""

import os
import time

TAG = "sendmail-shim"
CHUNK_CHARS = 1800  # with the header, under the 2048 bytes every syslog daemon accepts
# journald drops what a unit logs beyond RateLimitBurst=10000 messages per priority in 30 s (its default;
# scaled up by 1.25 to 5 with free disk space, never down). A record of at most half that many parts
# passes whole even after other messages of the same unit; a larger one is cut to fit (app.py), and the
# caller's stderr line says so.
MAX_PARTS = 5000
MAX_TEXT = MAX_PARTS * CHUNK_CHARS
LOG_ERR = 3
LOG_INFO = 6
_TIMEOUT_SECONDS = 5.0


def chunks(text, size=CHUNK_CHARS):
    """Split ASCII JSON `text` in parts of at most `size` characters (plus an escape).

    A space at either end of a part would be at the mercy of whitespace trimming: it becomes the escape
    \\u0020, which means the same inside a JSON string (compact JSON has spaces only inside strings).
    """
    parts = []
    for start in range(0, len(text), size):
        part = text[start : start + size]
        if part.startswith(" "):
            part = "\\u0020" + part[1:]
        if part.endswith(" "):
            part = part[:-1] + "\\u0020"
        parts.append(part)
    return parts or [""]


def _frame(priority, text):
    now = time.localtime()
    stamp = time.strftime("%b ", now) + f"{now.tm_mday:2d}" + time.strftime(" %H:%M:%S", now)
    return f"<{priority}>{stamp} {TAG}[{os.getpid()}]: {text}".encode("ascii", "replace")


def to_syslog(socket_path, facility, notice, event_id, text):
    """Send the err-level `notice`, then `text` in numbered info-level parts. Raises OSError."""
    import socket  # noqa: PLC0415 - only the fallback needs it

    parts = chunks(text)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        # A stuck syslog daemon must not hold the caller forever.
        sock.settimeout(_TIMEOUT_SECONDS)
        sock.connect(socket_path)
        sock.send(
            _frame(
                facility * 8 + LOG_ERR,
                f"{event_id} {notice}; the record follows in {len(parts)} parts",
            )
        )
        for number, part in enumerate(parts, 1):
            sock.send(_frame(facility * 8 + LOG_INFO, f"{event_id} {number}/{len(parts)} {part}"))
    finally:
        sock.close()


def write_stderr(fd, data, budget=None):
    """Best effort: the caller's stderr `fd` may be a closed pipe (or, within the recorder's `budget`, one
    that nobody reads)."""
    import contextlib  # noqa: PLC0415 - most runs write nothing on stderr

    from sendmail_shim import message  # noqa: PLC0415

    with contextlib.suppress(OSError):
        message.write_all(fd, data, budget)


def keep(cfg, record, reason, stderr_fd, budget=None):
    """Keep `record` outside the log; return where it went, for the caller's stderr line on `stderr_fd`."""
    text = record.ascii_line().decode("ascii")
    if cfg.fallback == "syslog":
        try:
            to_syslog(cfg.syslog_socket, cfg.syslog_facility, reason, record.event_id, text)
        except OSError as exc:
            why = f"syslog socket {cfg.syslog_socket}: {exc.strerror or exc}"
        else:
            return f"in syslog (tag {TAG}, id {record.event_id})"
    else:
        why = "fallback = none"
    # The last resort: the caller (cron mails or logs our stderr) gets the whole record.
    write_stderr(stderr_fd, text.encode("ascii") + b"\n", budget)
    return f"on stderr above ({why})"
