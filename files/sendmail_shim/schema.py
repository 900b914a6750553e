# SPDX-License-Identifier: MIT
"""The record schema: its field names, and one normalised view of an ecs or a classic record.

The writer (record.py) spells the fields readers rely on with these names and builds the nested record
with `nest()`; readers (the report, show-records, the probe, the tests) go through `view()`, whose
`get_field()` is nest's inverse, so that neither layout's spelling leaks into them. This file is
stdlib-only and imports nothing at load time (the writer runs on every message; the probe carries it to
hosts as Ansible module_utils, module_utils/sendmail_shim_schema.py links here).
"""

# ECS field paths (dotted; a record may hold them nested, as the shim writes, or flat).
TIMESTAMP = "@timestamp"
EVENT_ID = "event.id"
HOST = "host.hostname"
USER_ID = "user.id"
USER_NAME = "user.name"
PARENT = "process.parent.name"
ARGS = "process.args"
SUBJECT = "email.subject"
RECIPIENTS = "sendmail_shim.envelope.recipients"
KIND_ID = "sendmail_shim.kind.id"
KIND_TEMPLATE = "sendmail_shim.kind.template"
# Which entry point wrote the record: "recorder" (the resident recorder) or "exec" (the shim started
# for the message).
ENTRY = "sendmail_shim.entry"
ENTRIES = ("recorder", "exec")
MESSAGE = "message"
# The classic layout: exactly the Go sendmail-shim's fields (plus the shim's lossless extras).
CLASSIC_FIELDS = ("time", "uid", "username", "arguments", "body")
CLASSIC_REQUIRED = ("time", "uid", "body")


class SchemaError(ValueError):
    """A line that is not a record of either layout."""


def nest(flat):
    """The nested record for a mapping of dotted paths to values, in the mapping's order."""
    record = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = record
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return record


def get_field(record, dotted):
    """Field from a record written nested ({"user": {"id": ..}}) or flat ({"user.id": ..}), else None."""
    if dotted in record:
        return record[dotted]
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _text(value):
    """A field meant to be a string: numbers (flat or foreign writers) as text, anything else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def header(message, name):
    """The unfolded value of header `name` in a raw message, RFC 2047 words decoded, or None."""
    wanted = name.lower() + ":"
    found = None
    for line in message.replace("\r\n", "\n").split("\n"):
        if not line:
            break
        if found is not None and line[:1] in (" ", "\t"):
            found += " " + line.strip()
            continue
        if found is not None:
            break
        if line.lower().startswith(wanted):
            found = line[len(wanted) :].strip()
    if found and "=?" in found:
        import contextlib  # noqa: PLC0415 - only encoded subjects
        from email.header import decode_header, make_header  # noqa: PLC0415

        # An undecodable encoded word is kept as written.
        with contextlib.suppress(ValueError, LookupError):
            found = str(make_header(decode_header(found)))
    return found


class View:
    """One record, in the same terms whatever its layout. Missing values are None."""

    __slots__ = (
        "_kind",
        "args",
        "event_id",
        "host",
        "layout",
        "message",
        "parent",
        "recipients",
        "subject",
        "timestamp",
        "user_id",
        "user_name",
    )

    @property
    def user(self):
        """The sender as a person reads it: the name, else the uid."""
        return self.user_name or self.user_id

    @property
    def kind(self):
        """(id, template): the record's own for ecs, computed here for classic (and older ecs) records."""
        if self._kind is None:
            from sendmail_shim import kind  # noqa: PLC0415 - the probe's module_utils copy never needs it

            made = kind.of(self.user, self.parent, self.subject, self.host)
            self._kind = (made["id"], made["template"])
        return self._kind


def _ecs(record, view):
    view.layout = "ecs"
    view.timestamp = get_field(record, TIMESTAMP)
    view.event_id = _text(get_field(record, EVENT_ID))
    view.host = _text(get_field(record, HOST))
    view.user_id = _text(get_field(record, USER_ID))
    view.user_name = _text(get_field(record, USER_NAME))
    view.parent = _text(get_field(record, PARENT))
    view.args = get_field(record, ARGS)
    view.subject = _text(get_field(record, SUBJECT))
    view.recipients = get_field(record, RECIPIENTS)
    view.message = _text(get_field(record, MESSAGE))
    kind_id, kind_template = _text(get_field(record, KIND_ID)), _text(get_field(record, KIND_TEMPLATE))
    view._kind = (kind_id, kind_template) if kind_id is not None and kind_template is not None else None


def _classic(record, view, host):
    view.layout = "classic"
    view.timestamp = record["time"]
    view.event_id = None
    # Classic records do not name their host: the reader says where it read them.
    view.host = host
    view.user_id = _text(record["uid"])
    view.user_name = _text(record.get("username"))
    view.parent = None
    arguments = record.get("arguments")
    view.args = ["sendmail", *arguments] if isinstance(arguments, list) else None
    view.message = _text(record["body"])
    view.subject = header(view.message, "subject") if view.message is not None else None
    view.recipients = None
    view._kind = None


def view(record, host=None):
    """The normalised view of a decoded record; SchemaError when it is neither layout.

    `host` stands in for classic records, which carry none.
    """
    if not isinstance(record, dict):
        raise SchemaError("not a JSON object")
    result = View()
    if TIMESTAMP in record or "event" in record or EVENT_ID in record:
        _ecs(record, result)
        if not isinstance(result.timestamp, str):
            raise SchemaError(f"ecs record without a string {TIMESTAMP}")
    elif all(field in record for field in CLASSIC_REQUIRED):
        _classic(record, result, host)
        if not isinstance(result.timestamp, str):
            raise SchemaError("classic record without a string time")
    else:
        raise SchemaError(
            f"neither an ecs record ({TIMESTAMP}) nor a classic one ({', '.join(CLASSIC_REQUIRED)})"
        )
    return result


def parse(line, host=None):
    """The view of one log line (str or bytes); SchemaError for a line that is not a record."""
    import json  # noqa: PLC0415 - the writer imports this module on every message and never parses

    try:
        record = json.loads(line)
    except ValueError as exc:
        raise SchemaError(f"not JSON: {exc}") from None
    return view(record, host)
