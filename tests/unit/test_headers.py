# SPDX-License-Identifier: MIT
"""The hand-written header parser: fields, folding, RFC 2047, addresses, dates, -t recipients."""

import pytest
from sendmail_shim import headers


def test_block_ends_at_the_empty_line_and_unfolds():
    data = b"Subject: one\r\n two\r\nTo: a@b\r\n\r\nBody: not a header\r\n"
    assert headers.parse_block(data) == [("subject", "one\r\n two".replace("\r\n", "")), ("to", "a@b")]


def test_block_ends_at_a_line_that_is_not_a_field():
    assert headers.parse_block(b"hello world\nSubject: no\n") == []
    assert headers.parse_block(b"To: x\nthis is body\nSubject: no\n") == [("to", "x")]


def test_mbox_from_line_is_skipped():
    assert headers.parse_block(b"From root  Tue Nov 25 10:00:00 2025\nSubject: s\n\n") == [("subject", "s")]


def test_non_utf8_header_bytes_do_not_break_parsing():
    fields = headers.parse_block(b"Subject: caf\xe9\n\n")
    assert fields == [("subject", "caf\ufffd")]


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("=?UTF-8?Q?Caf=C3=A9_au_lait?=", "Café au lait"),
        ("=?utf-8?B?w6l0w6k=?=", "été"),
        ("=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab"),  # whitespace between encoded-words goes
        ("x =?ISO-8859-1?Q?=E9?= y", "x é y"),
        ("=?UTF-8?B?4oKs?= and =?UTF-8*en?Q?=E2=82=AC?=", "€ and €"),
        ("=?UTF-8?Q?=E2=82?= =?UTF-8?Q?=AC?=", "€"),  # one character split over two words
        ("=?no-such-charset?Q?abc?=", "=?no-such-charset?Q?abc?="),  # no charset: kept as written
        ("=?UTF-8?B?####?=", "=?UTF-8?B?####?="),
        ("plain =? not encoded", "plain =? not encoded"),
    ],
)
def test_rfc2047(raw, decoded):
    assert headers.decode_words(raw) == decoded


@pytest.mark.parametrize(
    ("value", "addresses"),
    [
        ("root", ["root"]),
        ("a@x, b@y", ["a@x", "b@y"]),
        ('"Doe, John" <john@x>, jane@y (Jane, J.)', ["john@x", "jane@y"]),
        ("Team: a@x, B <b@y>;, c@z", ["a@x", "b@y", "c@z"]),
        ("undisclosed-recipients:;", []),
        ("<@relay.example:user@host>", ["user@host"]),
        ("root (Cron Daemon)", ["root"]),
        ("", []),
    ],
)
def test_addresses(value, addresses):
    assert headers.parse_addresses(value) == addresses


@pytest.mark.parametrize(
    ("value", "rfc3339"),
    [
        ("Tue, 25 Nov 2025 11:57:03 +0100", "2025-11-25T11:57:03+01:00"),
        ("25 Nov 2025 11:57 GMT", "2025-11-25T11:57:00Z"),
        ("Tue, 25 Nov 25 11:57:03 EST", "2025-11-25T11:57:03-05:00"),
        ("Tue, 25 Nov 2025 11:57:03 -0000", "2025-11-25T11:57:03Z"),
        ("Tue, 25 Nov 2025 11:57:03 (no zone)", "2025-11-25T11:57:03Z"),
        ("yesterday", None),
        ("Tue, 32 Nov 2025 11:57:03 +0100", None),
        ("Tue, 25 Foo 2025 11:57:03 +0100", None),
    ],
)
def test_dates(value, rfc3339):
    assert headers.parse_date(value) == rfc3339


def test_t_recipients_are_to_cc_bcc():
    hdrs = headers.parse(b"To: a@x\nCc: B <b@x>, c@x\nBcc: d@x\nFrom: f@x\n\n")
    assert hdrs.recipients() == ["a@x", "b@x", "c@x", "d@x"]


def test_t_recipients_prefer_resent_fields():
    hdrs = headers.parse(b"To: a@x\nResent-To: r@x\nResent-Bcc: s@x\n\n")
    assert hdrs.recipients() == ["r@x", "s@x"]


def test_header_values_are_not_cut_by_the_parser():
    """Only the record's line cap decides what is kept of them (test_hostile_messages.py)."""
    huge = b"Subject: " + b"s" * 100_000 + b"\nTo: " + b"a@b," * 5000 + b"\n\n"
    hdrs = headers.parse(huge)
    assert len(hdrs.text("subject")) == 100_000
    assert len(hdrs.addresses("to")) == 5000
