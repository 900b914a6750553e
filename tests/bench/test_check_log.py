# SPDX-License-Identifier: MIT
"""The burst checker finds what it must: a partial or non-strict line, a missing or a duplicated message."""

import json

import check_log
import pytest

TOKEN = "sst-burst-test"  # noqa: S105 - a message marker, not a secret


def line(worker, number, **extra):
    return json.dumps({"message": {"subject": f"job {TOKEN}-{worker}-{number}"}, **extra}) + "\n"


def write(path, lines):
    path.write_text("".join(lines))
    return str(path)


def summary(tmp_path, lines, procs=2, count=2):
    return check_log.check([write(tmp_path / "mail.ndjson", lines)], TOKEN, procs, count)


def test_every_message_once_passes(tmp_path):
    got = summary(tmp_path, [line(w, i) for w in range(2) for i in range(2)])
    assert (got["lines"], got["bad_lines"], got["present"], got["missing"], got["duplicated"]) == (
        4,
        0,
        4,
        0,
        0,
    )


def test_missing_and_duplicated_messages_are_named(tmp_path):
    got = summary(tmp_path, [line(0, 0), line(0, 1), line(0, 1), line(1, 0)])
    assert got["missing_examples"] == [f"{TOKEN}-1-1"]
    assert got["duplicated_examples"] == [f"{TOKEN}-0-1"]


def test_a_message_spread_over_rotated_files_counts_once_per_line(tmp_path):
    first = write(tmp_path / "mail.ndjson.1", [line(0, 0), line(0, 1)])
    second = write(tmp_path / "mail.ndjson", [line(1, 0), line(1, 1), line(0, 0)])
    got = check_log.check([first, second], TOKEN, 2, 2)
    assert got["duplicated_examples"] == [f"{TOKEN}-0-0"]


@pytest.mark.parametrize(
    "bad",
    [
        line(1, 1)[:-1],  # the last record without its newline: a partial write
        '{"a": NaN}\n',
        '{"a": 1, "a": 2}\n',
        "[1, 2]\n",
        '{"a": "\xff"}\n',  # not UTF-8 once written as latin-1
        "\n",  # what a writer that could not have the lock in time leaves before its record
    ],
)
def test_lines_a_strict_reader_refuses_are_counted(tmp_path, bad):
    path = tmp_path / "mail.ndjson"
    good = "".join(line(w, i) for w, i in ((0, 0), (0, 1), (1, 0)))
    path.write_bytes(good.encode() + bad.encode("latin-1"))
    got = check_log.check([str(path)], TOKEN, 2, 2)
    assert got["bad_lines"] == 1, got


def test_a_blank_line_is_named_as_such(tmp_path):
    got = summary(tmp_path, [line(0, 0), "\n", line(0, 1), line(1, 0), line(1, 1)])
    assert got["bad_examples"] == [f"{tmp_path / 'mail.ndjson'}:2: a blank line"]
    assert (got["present"], got["missing"]) == (4, 0)


def test_records_are_counted_by_their_entry_nested_or_flat(tmp_path):
    lines = [
        line(0, 0, sendmail_shim={"entry": "recorder"}),
        line(0, 1, sendmail_shim={"entry": "recorder"}),
        line(1, 0, **{"sendmail_shim.entry": "exec"}),
        line(1, 1),
        json.dumps({"sendmail_shim": {"entry": "recorder"}, "message": "another token"}) + "\n",
    ]
    path = write(tmp_path / "mail.ndjson", lines)
    got = check_log.check([path], TOKEN, 2, 2, entry_field="sendmail_shim.entry")
    assert got["entries"] == {"recorder": 2, "exec": 1, "None": 1}
    assert check_log.check([path], TOKEN, 2, 2)["entries"] == {}
