"""The record: one strict-JSON line per message, in the ECS or the classic layout."""

import binascii
import os
import time

from sendmail_shim import kind

try:
    # The C string escapers behind json's encoder, without json's start-up cost (it imports re).
    from _json import encode_basestring as _quote_utf8
    from _json import encode_basestring_ascii as _quote_ascii
except ImportError:
    from json.encoder import py_encode_basestring as _quote_utf8
    from json.encoder import py_encode_basestring_ascii as _quote_ascii

ECS_VERSION = "8.11.0"
# The JSON around the message, and the digits of the counters written after the size check.
_SLACK = 256


class Quoted(str):
    """A JSON string literal already escaped, written as is."""


def clean(text):
    """`text` without lone surrogates (undecodable argv or environment bytes), so that it is UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def dumps(obj, quote=_quote_utf8):
    """Compact JSON for str, int, bool, None, dict and list; no float, hence no NaN."""
    out = []
    _emit(obj, out.append, quote)
    return "".join(out)


def _emit(obj, out, quote):
    if isinstance(obj, Quoted):
        out(obj if quote is _quote_utf8 else quote(_unquote(obj)))
    elif isinstance(obj, str):
        out(quote(clean(obj)))
    elif obj is None:
        out("null")
    elif obj is True:
        out("true")
    elif obj is False:
        out("false")
    elif isinstance(obj, int):
        out(int.__repr__(obj))
    elif isinstance(obj, dict):
        out("{")
        first = True
        for key, value in obj.items():
            if not first:
                out(",")
            first = False
            out(quote(clean(key)))
            out(":")
            _emit(value, out, quote)
        out("}")
    elif isinstance(obj, (list, tuple)):
        out("[")
        for i, value in enumerate(obj):
            if i:
                out(",")
            _emit(value, out, quote)
        out("]")
    else:
        raise TypeError(f"cannot write {type(obj).__name__} to a record")


def _unquote(literal):
    import json  # noqa: PLC0415 - only the fallback's ASCII rewrite needs a decoder

    return json.loads(literal)


def _utf8_len(text):
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def timestamp():
    """RFC 3339 UTC with microseconds, and the seconds-only form of the classic layout."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{base}.{nanos // 1000:06d}Z", base + "Z"


def new_id():
    return os.urandom(16).hex()


def _trim_partial_char(data):
    """`data` cut by the size cap may end inside a UTF-8 sequence: drop that partial character."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
            return data[: exc.start]
    return data


def encode_message(data, truncated, budget):
    """Fit the message bytes into `budget` bytes of JSON.

    Returns (readable text as a JSON literal, base64 or None, bytes kept, truncated). Valid UTF-8 that
    fits goes as text alone. Otherwise base64 carries the exact bytes (fewer of them if even base64 would
    not fit) and the text is a readable, possibly shortened, view with U+FFFD for undecodable bytes.
    """
    if truncated:
        data = _trim_partial_char(data)
    try:
        literal = _quote_utf8(data.decode("utf-8"))
    except UnicodeDecodeError:
        literal = None
    if literal is not None and _utf8_len(literal) <= budget:
        return Quoted(literal), None, len(data), truncated
    del literal
    reserve = min(65536, budget // 8)
    room = max(0, budget - reserve)
    if 4 * ((len(data) + 2) // 3) + 2 > room:
        data = data[: max(0, (room - 2) // 4 * 3)]
        truncated = True
    b64 = binascii.b2a_base64(data, newline=False).decode("ascii")
    readable = data.decode("utf-8", "replace")
    room = budget - len(b64) - 2
    literal = _quote_utf8(readable)
    if _utf8_len(literal) > room:
        # No character takes more than six bytes once escaped (\u0000).
        literal = _quote_utf8(readable[: max(0, (room - 2) // 6)])
    return Quoted(literal), b64, len(data), truncated


def _nonempty(obj):
    return {k: v for k, v in obj.items() if v is not None}


class Record:
    """The fields of one record, and its line."""

    def __init__(self, fields, event_id):
        self.fields = fields
        self.event_id = event_id

    def line(self):
        return (dumps(self.fields) + "\n").encode("utf-8", "replace")

    def ascii_line(self):
        """The same record as pure printable ASCII, for syslog: it may be split anywhere."""
        return dumps(self.fields, _quote_ascii).replace("\x7f", "\\u007f").encode("ascii")


def build(ctx, sink, sender, recipients, headers, *, extra=None):
    """The record of one message, in the configured layout, within the configured line size.

    `ctx` carries what does not change between messages (config, identity, argv, options);
    `extra` is merged into `sendmail_shim` (the SMTP session, an error).
    """
    event_id = new_id()
    precise, seconds = timestamp()
    cfg = ctx.cfg
    data = bytes(sink.kept)
    if cfg.log_format == "classic":
        fields = _classic(ctx, seconds)
    else:
        fields = _ecs(ctx, (event_id, precise), (sender, recipients), headers, extra)
    # Measure everything but the message, then give the message what is left of the line.
    budget = cfg.max_line_bytes - len(dumps(fields).encode("utf-8", "replace")) - _SLACK
    literal, b64, kept, truncated = encode_message(data, sink.truncated, max(0, budget))
    del data
    if cfg.log_format == "classic":
        fields["body"] = literal
        # Only when needed, so that records of ordinary messages keep exactly the original fields.
        if b64 is not None:
            fields["body_base64"] = b64
        if truncated:
            fields.update(truncated=True, bytes=sink.total, sha256=sink.hexdigest())
    else:
        message = fields["sendmail_shim"]["message"]
        message.update(bytes=sink.total, kept_bytes=kept, sha256=sink.hexdigest(), truncated=truncated)
        if b64 is not None:
            message["base64"] = b64
        fields["message"] = literal
    return Record(fields, event_id)


def _classic(ctx, seconds):
    """The original Go sendmail-shim's fields, in its order."""
    fields = {"time": seconds, "uid": str(ctx.identity.uid)}
    if ctx.identity.name is not None:
        fields["username"] = ctx.identity.name
    fields["arguments"] = ctx.args
    return fields


def _ecs(ctx, event, envelope, headers, extra):
    event_id, precise = event
    sender, recipients = envelope
    ident = ctx.identity
    email = {
        "direction": "outbound",
        "local_id": event_id,
        "from": {"address": headers.addresses("from")},
        "to": {"address": headers.addresses("to")},
        "cc": {"address": headers.addresses("cc")},
        "bcc": {"address": headers.addresses("bcc")},
    }
    message_id = headers.text("message-id")
    email.update(
        _nonempty(
            {
                "subject": headers.text("subject"),
                "message_id": message_id.strip().strip("<>") if message_id else None,
                "origination_timestamp": headers.date(),
                "x_mailer": headers.text("x-mailer"),
                "content_type": headers.text("content-type"),
            }
        )
    )
    shim = {
        "mode": ctx.options.mode_name,
        "envelope": {"sender": sender, "recipients": recipients},
        "options": ctx.options.to_record(),
        "kind": kind.of(ident.name or str(ident.uid), ctx.parent[1], headers.text("subject"), ctx.hostname),
        "message": {},
    }
    if extra:
        shim.update(extra)
    fields = {
        "@timestamp": precise,
        "ecs": {"version": ECS_VERSION},
        "event": {
            "kind": "event",
            "category": ["email"],
            "type": ["info"],
            "action": "email-submitted",
            "dataset": "sendmail_shim.mail",
            "module": "sendmail_shim",
            "id": event_id,
        },
        "host": {"hostname": ctx.hostname},
        "user": {"id": str(ident.uid), "name": ident.name or str(ident.uid)},
        "group": {"id": str(ident.gid)},
        "process": {
            "pid": ctx.pid,
            "name": ctx.argv[0].rpartition("/")[2],
            "args": ctx.argv,
            "args_count": len(ctx.argv),
            "parent": _nonempty({"pid": ctx.parent[0], "name": ctx.parent[1]}),
        },
        "email": email,
        "sendmail_shim": shim,
    }
    if ctx.peer:
        fields["source"] = ctx.peer
    return fields
