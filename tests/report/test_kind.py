# SPDX-License-Identifier: MIT
"""The kind: variable parts of a subject become placeholders, the words stay, the id is stable."""

import pytest
from sendmail_shim import kind


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Job 1234 failed, exit 2", "Job <n> failed, exit <n>"),
        ("Disk 93% full", "Disk <n>% full"),
        ("commit 3f2a9c81d0e4 pushed", "commit <hex> pushed"),
        ("pointer 0xdeadbeef", "pointer <hex>"),
        ("run 123e4567-e89b-12d3-a456-426614174000 done", "run <uuid> done"),
        ("report 2026-11-29 ready", "report <date> ready"),
        ("report 29/11/2026 ready", "report <date> ready"),
        ("at 20:45:26.123 and 20:45", "at <time> and <time>"),
        ("since 2026-11-29T20:45:26Z", "since <date>"),
        ("result for web01.example.com: SUCCESS", "result for <host>: SUCCESS"),
        ("ping 10.0.0.12 lost", "ping <ip> lost"),
        ("Mail from alice@example.org", "Mail from <addr>"),
        ("Cron <root@web01> /usr/local/bin/backup.sh", "Cron <<addr>> <path>"),
        ("Backup of ~/docs and ./x and ../y", "Backup of <path> and <path> and <path>"),
        ("worker pid=4242 restarted", "worker pid=<n> restarted"),
        ("  many   blanks\there ", "many blanks here"),
        ("probe sendmail-probe-3f2a9c81d0e4-root", "probe sendmail-probe-<hex>-root"),
        ("rotated job-20261129 and backup_db_42", "rotated job-<n> and backup_db_<n>"),
        ("up-to-date x-y_z --level", "up-to-date x-y_z --level"),
    ],
)
def test_template_replaces_variable_parts(subject, expected):
    assert kind.template(subject) == expected


def test_words_stay_even_when_they_look_like_hex_or_hosts_without_dots():
    assert (
        kind.template("deadbeef facade added decade web01 IPv6") == "deadbeef facade added decade web01 IPv6"
    )


def test_the_records_host_name_is_a_host_even_without_a_dot():
    assert kind.template("*** SECURITY information for web01 ***", "web01.example.com") == (
        "*** SECURITY information for <host> ***"
    )
    assert kind.template("status of db1", "web01") == "status of db1"


def test_missing_subject_is_an_empty_template():
    assert kind.template(None) == ""


def test_template_is_capped():
    assert len(kind.template("word " * 200)) == kind.MAX_TEMPLATE


def test_id_is_stable_across_variable_parts_and_differs_by_user_parent_and_words():
    first = kind.of("root", "cron", "Job 1 failed on web01 at 2026-11-29 20:00", "web01")
    again = kind.of("root", "cron", "Job 977 failed on web02 at 2026-12-01 03:14", "web02")
    assert first == again
    assert first["template"] == "Job <n> failed on <host> at <date> <time>"
    assert len(first["id"]) == kind.ID_LENGTH
    assert int(first["id"], 16) >= 0
    others = {
        kind.of("alice", "cron", "Job 1 failed", None)["id"],
        kind.of("root", "sudo", "Job 1 failed", None)["id"],
        kind.of("root", "cron", "Job 1 succeeded", None)["id"],
        kind.of("root", "cron", "Job 1 failed", None)["id"],
    }
    assert len(others) == 4


def test_id_is_the_same_in_every_process():
    # A fixed value: the id must not depend on hash seeds or the interpreter, or fleets could not merge.
    assert kind.kind_id("root", "cron", "Cron <<addr>> <path>") == "550b606a5e19"


def test_known_kinds_are_bounded_and_give_the_same_answer(monkeypatch):
    monkeypatch.setattr(kind, "_KNOWN", {})
    monkeypatch.setattr(kind, "_KNOWN_MAX", 3)
    first = kind.of("root", "cron", "Job 1 failed", "web01")
    first["id"] = "changed by a caller"
    again = kind.of("root", "cron", "Job 1 failed", "web01")
    assert again == kind.of("root", "cron", "Job 2 failed", "web01")
    assert again["id"] == kind.kind_id("root", "cron", "Job <n> failed")
    for number in range(10):
        kind.of("root", "cron", f"Job {number} failed", "web01")
        assert len(kind._KNOWN) <= 3
