# SPDX-License-Identifier: MIT
"""The record: one strict-JSON line per message, in the ECS or the classic layout."""

import binascii
import os
import time

from sendmail_shim import kind, schema

try:
    # The C string escapers behind json's encoder, without json's start-up cost (it imports re).
    from _json import encode_basestring as _quote_utf8
    from _json import encode_basestring_ascii as _quote_ascii
except ImportError:
    from json.encoder import py_encode_basestring as _quote_utf8
    from json.encoder import py_encode_basestring_ascii as _quote_ascii
try:
    # json's C encoder, for the same reason: most of a record's CPU is its JSON (make bench, profile).
    from _json import make_encoder as _make_encoder
except ImportError:
    _make_encoder = None

ECS_VERSION = "8.11.0"
# The JSON around the message, and the digits of the counters written after the size check.
_SLACK = 256


class Quoted(str):
    """A JSON string literal already escaped, written as is. The C path of dumps takes it only as a value
    of the outermost object, which is where build puts the message."""


def _foreign_surrogate(char):
    return "\ud800" <= char <= "\udfff" and not "\udc80" <= char <= "\udcff"


def clean(text):
    """`text` without lone surrogates (undecodable argv or environment bytes), so that it is UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Surrogates that stand for no undecodable byte (outside U+DC80..U+DCFF) would fail even
        # surrogateescape: they become U+FFFD first.
        text = "".join("\ufffd" if _foreign_surrogate(c) else c for c in text)
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def _not_json(obj):
    raise TypeError(f"cannot write {type(obj).__name__} to a record")


# Arguments: markers, default, encoder, indent, key and item separators, sort_keys, skipkeys, allow_nan.
_c_encode = _make_encoder and _make_encoder(None, _not_json, _quote_utf8, None, ":", ",", False, False, False)


def _c_dumps(obj):
    """dumps by json's C encoder; None where it would differ from _emit: a lone surrogate, which clean()
    rewrites. Outermost Quoted values go in as unique tokens, then their literals replace the tokens."""
    literals = []
    if isinstance(obj, dict) and any(isinstance(value, Quoted) for value in obj.values()):
        obj = dict(obj)
        for key, value in obj.items():
            if isinstance(value, Quoted):
                token = "\x00" + new_id()
                literals.append((_quote_utf8(token), value))
                obj[key] = token
    text = "".join(_c_encode(obj, 0))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return None
    for token, literal in literals:
        text = text.replace(token, literal, 1)
    return text


def dumps(obj, quote=_quote_utf8):
    """Compact strict JSON (never NaN or Infinity) for str, int, bool, None, dict and list."""
    if quote is _quote_utf8 and _c_encode:
        text = _c_dumps(obj)
        if text is not None:
            return text
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


def _text_prefix(text, budget):
    """The longest prefix of `text` whose JSON literal takes at most `budget` bytes, and that literal."""
    step = 1 << 16
    used = 2  # the quotes
    start = 0
    while start < len(text):
        piece = text[start : start + step]
        cost = _utf8_len(_quote_utf8(piece)) - 2
        if used + cost > budget:
            break
        used += cost
        start += len(piece)
    # Within the piece that does not fit whole: one character at a time, each costing what it costs.
    end = start
    while end < len(text):
        cost = _utf8_len(_quote_utf8(text[end])) - 2
        if used + cost > budget:
            break
        used += cost
        end += 1
    prefix = text[:end]
    return prefix, _quote_utf8(prefix)


def encode_message(data, truncated, budget):
    """Fit the message bytes into `budget` bytes of JSON.

    Returns (readable text as a JSON literal, base64 or None, bytes kept, truncated). Valid UTF-8 goes
    as text alone: whole if it fits, else its longest prefix that fits, unless base64 would keep more
    bytes. Otherwise base64 carries the exact bytes (fewer of them if even base64 would not fit) and the
    text is a readable, possibly shortened, view with U+FFFD for undecodable bytes.
    """
    if truncated:
        data = _trim_partial_char(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    reserve = min(65536, budget // 8)
    room = max(0, budget - reserve)
    if text is not None:
        literal = _quote_utf8(text)
        if _utf8_len(literal) <= budget:
            return Quoted(literal), None, len(data), truncated
        del literal
        prefix, literal = _text_prefix(text, max(2, budget))
        kept = len(prefix.encode("utf-8"))
        # Text costly to escape (control characters: six bytes each) keeps more as base64.
        if kept >= (room - 2) // 4 * 3:
            return Quoted(literal), None, kept, True
        del prefix, literal
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


# Values that a caller or a message chooses, and so may be of any size: cut, largest first, when the
# record would not fit. Paths of dicts; every str or list below them may be cut.
_CUTTABLE = (
    ("email",),
    ("process", "name"),
    ("process", "args"),
    ("sendmail_shim", "envelope"),
    ("sendmail_shim", "options"),
    ("sendmail_shim", "smtp"),
    ("sendmail_shim", "usage_errors"),
    ("arguments",),
)
_FIXED = frozenset(("email.direction", "email.local_id", "sendmail_shim.options.mode"))


def _cuttable_leaves(fields):
    """[(dict, key, dotted path)] of the str and list values a caller chose."""
    leaves = []

    def walk(obj, path):
        for key, value in obj.items():
            sub = f"{path}.{key}" if path else key
            if isinstance(value, dict):
                walk(value, sub)
            elif isinstance(value, (str, list)) and not isinstance(value, Quoted) and sub not in _FIXED:
                leaves.append((obj, key, sub))

    for root in _CUTTABLE:
        obj = fields
        for key in root[:-1]:
            obj = obj.get(key) if isinstance(obj, dict) else None
        if isinstance(obj, dict) and root[-1] in obj:
            value = obj[root[-1]]
            if isinstance(value, dict):
                walk(value, ".".join(root))
            else:
                leaves.append((obj, root[-1], ".".join(root)))
    return leaves


def _shrunk(value, target):
    """`value` cut to an encoded size of at most `target`: a list keeps whole items, a string its first
    characters."""
    if isinstance(value, list):
        used = 2
        kept = 0
        for item in value:
            cost = _measure(item) + (1 if kept else 0)
            if used + cost > target:
                break
            used += cost
            kept += 1
        return value[:kept]
    size = _measure(value)
    keep = len(value)
    while keep and size > target:
        keep = min(keep - 1, int(keep * target / size))
        size = _measure(value[:keep])
    return value[:keep]


def _cut_report(leaves, totals):
    return [
        {"field": path, "kept": len(leaves[i][0][leaves[i][1]]), "total": total}
        for path, (i, total) in totals.items()
    ]


def _fit(fields, room):
    """Cut the caller-chosen values of `fields` until they and the report of the cuts take at most
    `room` bytes; returns that report, [{"field", "kept", "total"}] (list items or characters), and the
    size of `fields` without it."""
    size = _measure(fields)
    if size <= room:
        return [], size
    leaves = _cuttable_leaves(fields)
    sizes = [_measure(obj[key]) for obj, key, _ in leaves]
    totals = {}
    report = []
    # The report goes into the record as ',"cut":[...]'; each entry's numbers may still shrink.
    while leaves and size + len(',"cut":') + _measure(report) > room:
        i = max(range(len(leaves)), key=sizes.__getitem__)
        obj, key, path = leaves[i]
        value = obj[key]
        if sizes[i] <= 2:  # "" or []: nothing left to cut
            break
        excess = size + len(',"cut":') + _measure(report) + len(path) + 64 - room
        # Never more than half at once: the next largest value may then be the one to cut.
        target = max(2, sizes[i] - excess, sizes[i] // 2)
        totals.setdefault(path, (i, len(value)))
        obj[key] = _shrunk(value, target)
        new = _measure(obj[key])
        size -= sizes[i] - new
        sizes[i] = new
        report = _cut_report(leaves, totals)
    return report, size


def _measure(obj):
    """Bytes of `obj` in a log line."""
    return _utf8_len(dumps(obj))


def _worst_cost(size):
    """An upper bound of what `size` message bytes may take in the record: escaped text, or base64
    plus a readable view."""
    return 8 * size + 64


def _nonempty(obj):
    return {k: v for k, v in obj.items() if v is not None}


class Record:
    """The fields of one record, and its line."""

    def __init__(self, fields, event_id, kept_bytes=None):
        self.fields = fields
        self.event_id = event_id
        self.kept_bytes = kept_bytes

    def line(self):
        return (dumps(self.fields) + "\n").encode("utf-8", "replace")

    def ascii_line(self):
        """The same record as pure printable ASCII, for syslog: it may be split anywhere."""
        return dumps(self.fields, _quote_ascii).replace("\x7f", "\\u007f").encode("ascii")


def build(origin, options, envelope, headers, sink, *, log_format, line_limit, extra=None):
    """The record of one message (`sink`, a message.Sink), in `log_format`, within `line_limit` bytes.

    `origin` (core.Origin) says who handed the message over, how and where; `options` (cli.Options) what
    its command line asked for; `envelope` is (sender, recipients); `headers` the parsed header
    (headers.Headers); `extra` is merged into `sendmail_shim` (the SMTP session, an error). The rescue
    passes what it can still trust: no options and no headers (None) when those may be what failed.

    The message gets a fair share of the line: the caller-chosen values (header-derived fields, argv,
    recipients) are cut, largest first, until the message has at least half the line or all it could
    need. The record reports each cut under `sendmail_shim.cut` (`cut` in the classic layout).
    """
    event_id = new_id()
    precise, seconds = timestamp()
    room = line_limit - _SLACK
    data = bytes(sink.kept)
    if log_format == "classic":
        fields = _classic(origin, seconds)
    else:
        fields = _ecs(origin, options, (event_id, precise), envelope, headers, extra=extra)
    cuts, size = _fit(fields, room - min(room // 2, _worst_cost(len(data))))
    if cuts:
        (fields if log_format == "classic" else fields["sendmail_shim"])["cut"] = cuts
        size = _measure(fields)
    # Everything but the message is measured: the message gets what is left of the line.
    budget = room - size
    literal, b64, kept, truncated = encode_message(data, sink.truncated, max(0, budget))
    del data
    if log_format == "classic":
        fields["body"] = literal
        # Only when needed, so that records of ordinary messages keep exactly the original fields.
        if b64 is not None:
            fields["body_base64"] = b64
        if truncated or sink.budget_exceeded:
            fields.update(truncated=truncated, bytes=sink.total, kept_bytes=kept, sha256=sink.hexdigest())
        if sink.budget_exceeded:
            fields["budget_exceeded"] = sink.budget_exceeded
    else:
        message = fields["sendmail_shim"]["message"]
        message.update(bytes=sink.total, kept_bytes=kept, sha256=sink.hexdigest(), truncated=truncated)
        if sink.budget_exceeded:
            message["budget_exceeded"] = sink.budget_exceeded
        if b64 is not None:
            message["base64"] = b64
        fields["message"] = literal
    return Record(fields, event_id, kept)


def _classic(origin, seconds):
    """The original Go sendmail-shim's fields (schema.CLASSIC_FIELDS), in its order; build adds the body."""
    caller = origin.caller
    fields = {"time": seconds, "uid": str(caller.uid)}
    if caller.name is not None:
        fields["username"] = caller.name
    # A list, not the origin's tuple: _fit cuts the str and list values that do not fit.
    fields["arguments"] = list(origin.argv[1:])
    return fields


def _header_fields(event_id, headers, caller, hostname):
    """The email object and the kind (id, template): what the message's own header says."""
    email = {"direction": "outbound", "local_id": event_id}
    if headers is None:
        return email, kind.of(caller.name or str(caller.uid), caller.parent_name, None, hostname)
    email.update(
        {
            "from": {"address": headers.addresses("from")},
            "to": {"address": headers.addresses("to")},
            "cc": {"address": headers.addresses("cc")},
            "bcc": {"address": headers.addresses("bcc")},
        }
    )
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
    made = kind.of(caller.name or str(caller.uid), caller.parent_name, headers.text("subject"), hostname)
    return email, made


def _ecs(origin, options, event, envelope, headers, *, extra):
    event_id, precise = event
    sender, recipients = envelope
    caller = origin.caller
    # A list, not the origin's tuple: _fit cuts the str and list values that do not fit.
    argv = list(origin.argv)
    email, made = _header_fields(event_id, headers, caller, origin.hostname)
    # Dotted paths, nested by schema.nest: the fields readers rely on are spelled by the schema's names.
    flat = {
        schema.TIMESTAMP: precise,
        "ecs.version": ECS_VERSION,
        "event.kind": "event",
        "event.category": ["email"],
        "event.type": ["info"],
        "event.action": "email-submitted",
        "event.dataset": "sendmail_shim.mail",
        "event.module": "sendmail_shim",
        schema.EVENT_ID: event_id,
        schema.HOST: origin.hostname,
        schema.USER_ID: str(caller.uid),
        schema.USER_NAME: caller.name or str(caller.uid),
        "group.id": str(caller.gid),
        "process.pid": caller.pid,
        "process.name": argv[0].rpartition("/")[2] if argv else None,
        schema.ARGS: argv,
        "process.args_count": len(argv),
        "process.parent": _nonempty({"pid": caller.parent_pid, "name": caller.parent_name}),
        "email": email,
        schema.ENTRY: origin.entry,
        "sendmail_shim.mode": options.mode_name if options is not None else None,
        "sendmail_shim.envelope.sender": sender,
        schema.RECIPIENTS: recipients,
        "sendmail_shim.options": options.to_record() if options is not None else None,
        schema.KIND_ID: made["id"],
        schema.KIND_TEMPLATE: made["template"],
        "sendmail_shim.message": {},
    }
    fields = schema.nest(_nonempty(flat) if options is None else flat)
    if extra:
        fields["sendmail_shim"].update(extra)
    if caller.peer:
        fields["source"] = caller.peer
    return fields
