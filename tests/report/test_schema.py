# SPDX-License-Identifier: MIT
"""schema.view reads ecs and classic records alike; the writer's records read back with their kind."""

import json

import pytest
from sendmail_shim import kind, schema

ECS = {
    "@timestamp": "2026-11-29T20:45:26.123456Z",
    "event": {"id": "e1"},
    "host": {"hostname": "web01"},
    "user": {"id": "0", "name": "root"},
    "process": {"args": ["sendmail", "-t"], "parent": {"pid": 1, "name": "cron"}},
    "email": {"subject": "Cron <root@web01> /bin/job 7"},
    "sendmail_shim": {"kind": {"id": "0123456789ab", "template": "T"}, "envelope": {"recipients": ["root"]}},
    "message": "Subject: Cron <root@web01> /bin/job 7\n\nout\n",
}
CLASSIC = {
    "time": "2026-11-29T20:45:26Z",
    "uid": "1000",
    "username": "alice",
    "arguments": ["-t"],
    "body": "From: alice\nSubject: =?utf-8?q?Job_7_=C3=A9chec?=\n  on web01\n\nbody\nSubject: not this\n",
}


def test_ecs_record_reads_its_own_kind():
    view = schema.parse(json.dumps(ECS))
    assert (view.layout, view.timestamp, view.host, view.user, view.parent) == (
        "ecs",
        "2026-11-29T20:45:26.123456Z",
        "web01",
        "root",
        "cron",
    )
    assert view.args == ["sendmail", "-t"]
    assert view.recipients == ["root"]
    assert view.kind == ("0123456789ab", "T")


def test_flat_ecs_record_as_filebeat_may_write_it():
    flat = {"@timestamp": "2026-11-29T20:45:26Z", "user.id": "33", "email.subject": "Hi 5"}
    view = schema.view(flat)
    assert (view.user, view.subject) == ("33", "Hi 5")
    assert view.kind == (kind.kind_id("33", None, "Hi <n>"), "Hi <n>")


def test_classic_record_gets_subject_from_the_body_and_kind_when_read():
    view = schema.parse(json.dumps(CLASSIC).encode(), host="web01")
    assert (view.layout, view.timestamp, view.host, view.user_id, view.user) == (
        "classic",
        "2026-11-29T20:45:26Z",
        "web01",
        "1000",
        "alice",
    )
    assert view.parent is None
    assert view.args == ["sendmail", "-t"]
    assert view.subject == "Job 7 échec on web01"
    assert view.kind == (kind.kind_id("alice", None, "Job <n> échec on <host>"), "Job <n> échec on <host>")


def test_classic_record_without_username_is_its_uid():
    record = dict(CLASSIC, body="no headers at all")
    del record["username"]
    view = schema.view(record)
    assert (view.user, view.subject) == ("1000", None)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"a": 1}', "neither an ecs record"),
        ('{"@timestamp": 5}', "without a string @timestamp"),
        ('{"time": 5, "uid": "1", "body": ""}', "classic record without a string time"),
    ],
)
def test_lines_that_are_not_records_say_why(line, reason):
    with pytest.raises(schema.SchemaError, match=reason):
        schema.parse(line)


def test_the_writers_record_reads_back_with_the_kind_the_writer_computed(write_record):
    record = write_record(b"Subject: Job 42 failed at 20:00\n\nbody\n")
    view = schema.view(record)
    assert record["sendmail_shim"]["kind"]["template"] == "Job <n> failed at <time>"
    assert view.kind == (record["sendmail_shim"]["kind"]["id"], "Job <n> failed at <time>")
    assert view.kind[0] == kind.of(view.user, view.parent, view.subject, view.host)["id"]


SCHEMA_PATHS = [
    value
    for name, value in vars(schema).items()
    if name.isupper() and isinstance(value, str) and name not in ("MESSAGE",)
]


def test_the_writer_writes_every_field_the_schema_names(write_record):
    # One home for the names: a field renamed in schema.py and not in the writer (or the reverse) fails.
    record = write_record(b"Subject: nightly\n\nbody\n", "-f", "cron@web01", "root")
    missing = [path for path in SCHEMA_PATHS if schema.get_field(record, path) is None]
    assert missing == []
    assert schema.get_field(record, schema.MESSAGE) == "Subject: nightly\n\nbody\n"


def test_the_writers_classic_record_has_exactly_the_classic_fields(write_record):
    record = write_record(b"Subject: nightly\n\nbody\n", config="log_format = classic\n")
    assert tuple(record) == schema.CLASSIC_FIELDS


def test_nest_is_the_inverse_of_get_field():
    flat = {"@timestamp": "t", "user.id": "0", "user.name": "root", "a.b.c": [1]}
    nested = schema.nest(flat)
    assert nested == {"@timestamp": "t", "user": {"id": "0", "name": "root"}, "a": {"b": {"c": [1]}}}
    assert {path: schema.get_field(nested, path) for path in flat} == flat


def test_fields_of_the_wrong_type_do_not_break_readers():
    odd = {
        "@timestamp": "2026-11-29T20:45:26Z",
        "user": {"id": 1000, "name": ["x"]},
        "host": {"hostname": {"name": "h"}},
        "process": {"parent": {"name": True}},
        "email": {"subject": 42},
        "message": None,
    }
    view = schema.view(odd)
    assert (view.user_id, view.user_name, view.host, view.parent, view.subject) == (
        "1000",
        None,
        None,
        None,
        "42",
    )
    assert view.kind == (kind.kind_id("1000", None, "<n>"), "<n>")
    classic = schema.view({"time": "2026-11-29T20:45:26Z", "uid": 5, "body": ["not text"]})
    assert (classic.user, classic.subject, classic.message) == ("5", None, None)
