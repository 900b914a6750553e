# SPDX-License-Identifier: MIT
"""The sender's flood: P messages at once, one report per writer, bytes a caller left unread counted."""

import argparse

import sender

MIB = 1 << 20


def flood(cmd, procs=3, size=MIB):
    return sender.flood(argparse.Namespace(cmd=cmd, procs=procs, size=size, token="sst-flood-test"))  # noqa: S106


def test_every_writer_reports_its_child():
    got = flood(["/bin/sh", "-c", "cat >/dev/null"])
    assert got["writers_failed"] == 0
    assert [child["writer"] for child in got["children"]] == [0, 1, 2]
    assert [(child["status"], child["unsent"]) for child in got["children"]] == [(0, 0)] * 3
    assert all(child["maxrss_kib"] > 0 and child["cpu"] >= 0 for child in got["children"])


def test_a_caller_that_stops_reading_leaves_bytes_unsent_and_its_status_shows():
    got = flood(["/bin/sh", "-c", "head -c 1000 >/dev/null; exit 75"], procs=2, size=8 * MIB)
    assert [child["status"] for child in got["children"]] == [75, 75]
    assert all(child["unsent"] > 0 for child in got["children"])


def test_each_message_carries_its_writers_token(tmp_path):
    out = tmp_path / "seen"
    got = flood(["/bin/sh", "-c", f"head -c 2000 >>{out}"], procs=2, size=4096)
    assert got["writers_failed"] == 0
    seen = out.read_text()
    assert "sst-flood-test-0-0" in seen
    assert "sst-flood-test-1-0" in seen


def burst(cmd, procs=3, count=2):
    return sender.burst(argparse.Namespace(cmd=cmd, procs=procs, count=count, token="sst-burst-test"))  # noqa: S106


def test_the_burst_counts_every_failed_send():
    assert burst(["/bin/true"])["failures"] == 0
    got = burst(["/bin/false"])
    assert (got["messages"], got["failures"]) == (6, 6)


def test_the_burst_cpu_is_the_callers_not_the_senders():
    # The same sends one after the other (latency mode counts only the reaped commands) and in a burst:
    # the senders' own Python work (about as much again, per send) must not be in the burst's figure.
    cmd = ["/bin/true"]
    alone = sender.latency(argparse.Namespace(cmd=cmd, count=100, token="sst-lat-test"))  # noqa: S106
    together = burst(cmd, procs=2, count=50)
    assert together["cpu"] / together["messages"] < 1.5 * alone["cpu"] / 100
