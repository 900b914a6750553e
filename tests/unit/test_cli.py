# SPDX-License-Identifier: MIT
"""Option parsing for the argv of each real caller, and for what sendmail refuses."""

import pytest
from sendmail_shim import cli


def test_debian_cron():
    opts = cli.parse(["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "alice"])
    assert opts.mode_name == "deliver"
    assert opts.full_name == "CronDaemon"
    assert opts.ignore_dots
    assert opts.body_type == "8BITMIME"
    assert opts.o == ["em"]
    assert opts.recipients == ["alice"]
    assert not opts.extract_recipients
    assert not opts.errors and not opts.unknown


@pytest.mark.parametrize(
    ("argv", "ignore_dots"),
    [
        (["-t"], False),  # sudo
        (["-i", "-t"], True),  # bsd-mailx
        (["-t", "-i"], True),  # PHP mail()
        (["-ti"], True),  # clustered flags
        (["-t", "-oi"], True),
    ],
)
def test_header_recipient_callers(argv, ignore_dots):
    opts = cli.parse(argv)
    assert opts.extract_recipients
    assert opts.ignore_dots is ignore_dots
    assert opts.recipients == []
    assert opts.mode_name == "deliver"


def test_git_send_email():
    opts = cli.parse(["-i", "dev@example.org", "list@example.org"])
    assert opts.ignore_dots
    assert opts.recipients == ["dev@example.org", "list@example.org"]


@pytest.mark.parametrize(
    "argv",
    [["-fjob@example.org"], ["-f", "job@example.org"], ["-rjob@example.org"], ["-r", "job@example.org"]],
)
def test_sender_attached_or_separate(argv):
    opts = cli.parse([*argv, "bob"])
    assert opts.sender == "job@example.org"
    assert opts.recipients == ["bob"]


def test_mail_and_s_nail_style():
    opts = cli.parse(["-i", "-r", "me@x", "-N", "never", "-R", "hdrs", "-V", "env1", "--", "-odd@x", "b@y"])
    assert (opts.sender, opts.dsn_notify, opts.dsn_return, opts.envelope_id) == (
        "me@x",
        "never",
        "hdrs",
        "env1",
    )
    # After "--" even a word starting with "-" is a recipient.
    assert opts.recipients == ["-odd@x", "b@y"]


@pytest.mark.parametrize(
    ("argv", "mode"),
    [
        (["-bs"], "smtp"),
        (["-bm"], "deliver"),
        (["-bp"], "queue"),
        (["-bi"], "aliases"),
        (["-I"], "aliases"),
        (["-bv", "a@b"], "verify"),
        (["-b", "s"], "smtp"),
        (["-bd"], "noop"),
    ],
)
def test_modes(argv, mode):
    opts = cli.parse(argv)
    assert opts.mode_name == mode
    assert not opts.errors


def test_program_names_choose_the_mode():
    assert cli.parse([], "/usr/bin/mailq").mode_name == "queue"
    assert cli.parse([], "newaliases").mode_name == "aliases"
    assert cli.parse([], "/usr/sbin/sendmail").mode_name == "deliver"
    # An explicit mode still wins over the name.
    assert cli.parse(["-bs"], "mailq").mode_name == "smtp"


def test_every_listed_option_is_accepted():
    argv = ["-G", "-U", "-n", "-v", "-h", "5", "-L", "tag", "-O", "DeliveryMode=b", "-odb", "-N", "success"]
    argv += ["-q", "-q1h", "-qRexample", "-m", "-x", "a@b"]
    opts = cli.parse(argv)
    assert opts.unknown == [] and opts.errors == []
    assert opts.recipients == ["a@b"]
    assert opts.O == ["DeliveryMode=b"]
    assert opts.o == ["db"]
    assert opts.queue_run == "Rexample"
    assert {"-G", "-U", "-n", "-v", "-m", "-x"} <= set(opts.flags)
    assert {"-h5", "-Ltag"} <= set(opts.other)


@pytest.mark.parametrize(
    ("argv", "ignored"),
    [
        (["-C/tmp/evil.cf"], ["-C/tmp/evil.cf"]),
        (["-C", "/tmp/evil.cf"], ["-C/tmp/evil.cf"]),
        (["-X/tmp/traffic"], ["-X/tmp/traffic"]),
        (["-X", "/tmp/traffic"], ["-X/tmp/traffic"]),
        (["-d"], ["-d"]),
        (["-d0-99.127"], ["-d0-99.127"]),
        (["-D", "/tmp/debug"], ["-D/tmp/debug"]),
    ],
)
def test_dangerous_options_are_recorded_not_used(argv, ignored):
    opts = cli.parse([*argv, "root"])
    assert opts.never_acted_on == ignored
    assert opts.recipients == ["root"]
    assert not opts.errors


def test_unknown_options_are_recorded_and_parsing_goes_on():
    opts = cli.parse(["-Zfoo", "-t", "--weird", "-iK", "root"])
    assert opts.unknown == ["-Zfoo", "--weird", "-K"]
    assert opts.extract_recipients and opts.ignore_dots
    assert opts.recipients == ["root"]
    assert opts.errors == []


@pytest.mark.parametrize("letter", ["f", "r", "F", "B", "N", "R", "V", "O", "o", "h", "L", "C", "X"])
def test_missing_option_argument_is_a_usage_error(letter):
    opts = cli.parse(["root", "-" + letter])
    assert opts.errors
    assert opts.recipients == ["root"]


def test_invalid_mode_is_a_usage_error():
    opts = cli.parse(["-bz"])
    assert opts.mode_name == "invalid"
    assert "invalid operation mode" in opts.errors[0]


@pytest.mark.parametrize(("value", "expected"), [("IgnoreDots", True), ("IgnoreDots=False", False)])
def test_long_option_ignore_dots(value, expected):
    assert cli.parse(["-O", value]).ignore_dots is expected


def test_to_record_has_stable_types():
    rec = cli.parse(["-t", "-fme@x", "-Z", "-C/x"]).to_record()
    assert rec["mode"] == "deliver"
    assert rec["extract_recipients"] is True
    assert rec["sender"] == "me@x"
    assert rec["unknown"] == ["-Z"]
    assert rec["never_acted_on"] == ["-C/x"]
    assert "full_name" not in rec
