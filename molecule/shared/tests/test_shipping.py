# SPDX-License-Identifier: MIT
"""Records reach central logging intact: a real agent (rsyslog imfile, configured by the role) ships
the log to a collector (prepare.yml's rsyslog imtcp), and each line parses there as the same JSON."""

import json
import time

import pytest
from conftest import LOG, host_vars, read_records

COLLECTED = "/var/log/sst-collector.ndjson"


def collected(host):
    text = host.check_output(f"cat {COLLECTED} 2>/dev/null || true")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_every_record_reaches_the_collector_as_the_same_json(shim_host):
    if not host_vars(shim_host).get("sst_collector"):
        pytest.skip("this scenario runs no collector")
    local = read_records(shim_host, LOG)
    assert local
    wanted = {r["event"]["id"]: r for r in local}
    deadline = time.monotonic() + 60
    while True:
        arrived = {r["event"]["id"]: r for r in collected(shim_host)}
        if set(wanted) <= set(arrived) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert sorted(set(wanted) - set(arrived)) == []
    for event_id, record in wanted.items():
        assert arrived[event_id] == record
