# SPDX-License-Identifier: MIT
"""Unit tests of library/sendmail_probe.py against a fake sendmail that appends JSON lines to a temp log.

The fake stands where the launcher would (tmp/usr/sbin/sendmail -> tmp/etc/alternatives/sendmail ->
tmp/launcher), so the module's path checks run for real; only the setuid check is turned off, except in
the test of that check. Sending as another user needs root and is marked so.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest
import sendmail_probe
import yaml
from ansible.module_utils.testing import patch_module_args

# Writes the record the real shim writes (ECS, nested), or misbehaves as MODE says.
FAKE = r"""#!{python}
import json, os, pwd, sys, time
LOG = {log!r}
MODE = {mode!r}
msg = sys.stdin.read()
subject = next((l[9:] for l in msg.splitlines() if l.startswith("Subject: ")), "")
uid = os.getuid()
record = {{
    "@timestamp": "2026-01-01T00:00:00Z",
    "event": {{"id": "fake"}},
    "user": {{"id": str(uid), "name": pwd.getpwuid(uid).pw_name}},
    "process": {{"groups": os.getgroups()}},
    "email": {{"subject": subject}},
    "message": msg,
}}
if MODE == "exit75":
    sys.stderr.write("sendmail-shim: log not writable, message kept in the journal\n")
    sys.exit(75)
if MODE == "exit71":
    sys.stderr.write("sendmail-shim: launcher: setresuid: Operation not permitted\n")
    sys.exit(71)
if MODE == "silent":
    sys.exit(0)
if MODE == "wrong-uid":
    record["user"] = {{"id": str(uid + 1), "name": "someone"}}
if MODE == "wrong-name":
    record["user"]["name"] = "someone"
if MODE == "no-uid":
    del record["user"]
if MODE == "flat":
    record = {{"@timestamp": "2026-01-01T00:00:00Z", "user.id": str(uid), "email.subject": subject,
              "message": msg}}
if MODE.startswith("classic"):
    # The Go sendmail-shim's fields (log_format = classic): no user.id, no host, no event.
    record = {{"time": "2026-01-01T00:00:00Z", "uid": str(uid), "username": pwd.getpwuid(uid).pw_name,
              "arguments": sys.argv[1:], "body": msg}}
if MODE == "classic-no-username":
    del record["username"]
if MODE == "classic-wrong-uid":
    record["uid"] = str(uid + 1)
if MODE.startswith("entry-"):
    record["sendmail_shim"] = {{"entry": MODE[len("entry-"):]}}
if MODE == "not-a-record":
    record = {{"message": msg}}
line = json.dumps(record) + "\n"
if MODE == "not-json":
    line = "not json: " + subject + "\n"
if MODE == "rotate":
    os.rename(LOG, LOG + ".1")
if MODE == "copytruncate":
    open(LOG, "w").close()
if MODE == "other-noise":
    with open(LOG, "a") as f:
        f.write(json.dumps({{"message": "another caller"}}) + "\n")
if MODE == "noise-only":
    line = json.dumps({{"message": "another caller"}}) + "\n"
if MODE == "late":
    # Accepted now, written later: the module must keep polling, not read once.
    if os.fork():
        sys.exit(0)
    time.sleep(0.5)
with open(LOG, "a") as f:
    f.write(line)
"""

# Stands where another MTA would; must never be run by the module.
FOREIGN = """#!/bin/sh
touch {marker}
"""

ME = pwd.getpwuid(os.geteuid()).pw_name
PROBE_PREFIX = "sendmail-probe-test"
NOT_INSTALLED = "{} does not exist: the shim is not installed (apply mailshim.sendmail_shim.site)"
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable


class Host:
    """A fake host layout under one directory."""

    def __init__(self, root: Path):
        self.root = root
        self.log = root / "var/log/sendmail-shim/mail.ndjson"
        self.launcher = root / "usr/local/sbin/sendmail-shim"
        self.sendmail = root / "usr/sbin/sendmail"
        self.alternative = root / "etc/alternatives/sendmail"
        for path in (self.log, self.launcher, self.sendmail, self.alternative):
            path.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()

    def install(self, mode: str = "ok") -> None:
        self.launcher.write_text(FAKE.format(python=SYSTEM_PYTHON, log=str(self.log), mode=mode))
        self.launcher.chmod(0o755)
        self.alternative.symlink_to(self.launcher)
        self.sendmail.symlink_to(os.path.relpath(self.alternative, self.sendmail.parent))

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def probe(self, users=(ME,), timeout: int = 5, check_setuid: bool = False, entry=None) -> dict:
        return sendmail_probe.run_probes(
            list(users),
            sendmail=str(self.sendmail),
            launcher=str(self.launcher),
            check_setuid=check_setuid,
            log=str(self.log),
            recipient="root",
            timeout=timeout,
            token=PROBE_PREFIX,
            entry=entry,
        )


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(sendmail_probe, "POLL_SECONDS", 0.01)


@pytest.fixture
def host(tmp_path) -> Host:
    return Host(tmp_path)


def test_probe_lands_in_log_with_identity(host):
    host.install()
    result = host.probe()
    assert not result["failed"], result["reasons"]
    (probe,) = result["probes"]
    assert probe["ok"] and probe["reason"] is None
    assert probe["rc"] == 0
    assert probe["uid"] == os.geteuid()
    assert probe["record"]["user"]["id"] == str(os.geteuid())
    assert probe["token"] in probe["record"]["email"]["subject"]
    assert probe["seconds"] is not None
    assert result["sendmail_realpath"] == str(host.launcher)
    assert result["summary"] == f"ok: {ME} (uid {os.geteuid()}) logged in {probe['seconds']} s"


def test_a_user_named_twice_is_probed_once(host):
    host.install()
    result = host.probe(users=[ME, ME])
    assert not result["failed"], result["reasons"]
    assert len(result["probes"]) == 1
    assert len(host.records()) == 1


def test_flat_ecs_keys_are_understood(host):
    host.install("flat")
    result = host.probe()
    assert not result["failed"], result["reasons"]
    assert result["probes"][0]["record"]["user.id"] == str(os.geteuid())


@pytest.mark.parametrize("mode", ["classic", "classic-no-username"])
def test_classic_records_are_understood(host, mode):
    host.install(mode)
    result = host.probe()
    assert not result["failed"], result["reasons"]
    (probe,) = result["probes"]
    assert probe["record"]["uid"] == str(os.geteuid())
    assert "user" not in probe["record"]


def test_classic_record_with_another_uid(host):
    host.install("classic-wrong-uid")
    uid = os.geteuid()
    reason = host.probe(timeout=1)["probes"][0]["reason"]
    assert reason == f"the record has uid {uid + 1} (name {ME}), expected {uid} ({ME})"


def test_record_through_the_expected_entry_point(host):
    host.install("entry-recorder")
    result = host.probe(entry="recorder")
    assert not result["failed"], result["reasons"]
    assert result["probes"][0]["record"]["sendmail_shim"]["entry"] == "recorder"


def test_record_through_another_entry_point(host):
    host.install("entry-exec")
    reason = host.probe(timeout=1, entry="recorder")["probes"][0]["reason"]
    assert reason == "the record came through the exec entry point, expected recorder"
    # Unasked, any entry point will do.
    assert not host.probe(timeout=1)["failed"]


@pytest.mark.parametrize("mode", ["ok", "classic"])
def test_record_that_does_not_name_its_entry_point(host, mode):
    host.install(mode)
    reason = host.probe(timeout=1, entry="exec")["probes"][0]["reason"]
    assert reason == "the record does not name its entry point (sendmail_shim.entry), expected exec"


def test_line_with_token_is_json_but_no_record(host):
    host.install("not-a-record")
    reason = host.probe(timeout=1)["probes"][0]["reason"]
    assert reason.startswith(f"the line of {host.log} that carries the token is not a record: neither an ecs")


def test_reads_only_what_was_appended_after_sending(host):
    # An old line carrying the same token but another identity must not be taken for the probe's record.
    decoy = {"user": {"id": "12345"}, "email": {"subject": f"sendmail-shim probe {PROBE_PREFIX}-{ME}"}}
    host.log.write_text(json.dumps(decoy) + "\n" + "x" * 100_000 + "\n")
    host.install()
    result = host.probe()
    assert not result["failed"], result["reasons"]
    assert result["probes"][0]["record"]["user"]["id"] == str(os.geteuid())


def test_waits_for_a_late_record(host):
    host.install("late")
    result = host.probe()
    assert not result["failed"], result["reasons"]
    assert result["probes"][0]["seconds"] >= 0.4


def test_skips_lines_of_other_callers(host):
    host.install("other-noise")
    result = host.probe()
    assert not result["failed"], result["reasons"]
    assert len(host.records()) == 2


def test_follows_rotation_during_the_wait(host):
    host.install("rotate")
    result = host.probe()
    assert not result["failed"], result["reasons"]
    assert Path(f"{host.log}.1").exists()


def test_follows_copytruncate(host):
    host.log.write_text('{"message": "old"}\n' * 50)
    host.install("copytruncate")
    result = host.probe()
    assert not result["failed"], result["reasons"]


def test_log_created_by_the_first_message(host):
    host.log.unlink()
    host.install()
    result = host.probe()
    assert not result["failed"], result["reasons"]


def test_no_sendmail(host):
    result = host.probe()
    assert result["failed"]
    assert result["probes"] == []
    assert result["reasons"] == [NOT_INSTALLED.format(host.sendmail)]
    assert result["summary"].startswith("FAILED: ")


def test_dangling_link(host):
    host.install()
    host.launcher.unlink()
    result = host.probe()
    assert result["failed"]
    assert "dangling link" in result["reasons"][0]
    assert str(host.alternative) in result["reasons"][0]


def _plant_foreign_mta(host, tmp_path):
    """An exim4 that leaves a marker if the probe ever runs it."""
    marker = tmp_path / "foreign-mta-ran"
    exim = host.root / "usr/sbin/exim4"
    exim.write_text(FOREIGN.format(marker=marker))
    exim.chmod(0o755)
    return exim, marker


def test_alternatives_point_elsewhere_sends_nothing(host, tmp_path):
    host.install()
    exim, marker = _plant_foreign_mta(host, tmp_path)
    host.alternative.unlink()
    host.alternative.symlink_to(exim)
    result = host.probe()
    assert result["failed"]
    assert result["sendmail_realpath"] == str(exim)
    assert f"resolves to {exim}, not the launcher {host.launcher}" in result["reasons"][0]
    assert "the sendmail alternative points elsewhere" in result["reasons"][0]
    assert "update-alternatives --display sendmail" in result["reasons"][0]
    assert result["probes"] == []
    assert not marker.exists()


def test_sendmail_of_an_mta_package_outside_alternatives(host, tmp_path):
    host.install()
    _, marker = _plant_foreign_mta(host, tmp_path)
    host.sendmail.unlink()
    host.sendmail.symlink_to("exim4")
    result = host.probe()
    assert result["failed"]
    assert "it is not the alternatives link but another MTA's file" in result["reasons"][0]
    assert f"dpkg -S {host.sendmail}" in result["reasons"][0]
    assert not marker.exists()


def test_launcher_not_setuid(host):
    host.install()
    result = host.probe(check_setuid=True)
    assert result["failed"]
    assert result["reasons"][0].startswith(f"launcher {host.launcher} is not setuid root")
    # The probe itself still ran: the report shows both the cause and what callers get.
    assert result["probes"][0]["ok"]
    assert "not setuid root" in result["summary"]


def test_exit_75_means_the_fallback(host, monkeypatch):
    monkeypatch.setattr(sendmail_probe, "in_journal", lambda token, since: True)
    host.install("exit75")
    result = host.probe(timeout=1)
    assert result["failed"]
    probe = result["probes"][0]
    assert probe["rc"] == 75 and probe["in_journal"] is True
    assert probe["reason"] == (
        f"sendmail exited 75: the message went to the fallback, not to {host.log}: "
        "sendmail-shim: log not writable, message kept in the journal (the journal has it)"
    )
    assert result["reasons"] == [f"{ME}: {probe['reason']}"]


def test_no_journalctl_leaves_in_journal_unknown(monkeypatch):
    monkeypatch.setattr(sendmail_probe.shutil, "which", lambda name: None)
    assert sendmail_probe.in_journal("anything", 0) is None


def test_exit_71_is_a_launcher_failure(host, monkeypatch):
    monkeypatch.setattr(sendmail_probe, "in_journal", lambda token, since: False)
    host.install("exit71")
    probe = host.probe(timeout=1)["probes"][0]
    assert probe["reason"].startswith("the launcher failed (exit 71), message not accepted: ")
    assert "setresuid" in probe["reason"]
    assert probe["in_journal"] is False


def test_log_not_growing(host, monkeypatch):
    monkeypatch.setattr(sendmail_probe, "in_journal", lambda token, since: None)
    host.install("silent")
    probe = host.probe(timeout=1)["probes"][0]
    assert probe["reason"] == f"log not growing: sendmail exited 0 but {host.log} got nothing new in 1 s"


def test_log_not_written_at_all(host, monkeypatch):
    monkeypatch.setattr(sendmail_probe, "in_journal", lambda token, since: None)
    host.log.unlink()
    host.install("silent")
    probe = host.probe(timeout=1)["probes"][0]
    assert probe["reason"] == f"log not written: {host.log} does not exist 1 s after sendmail exited 0"


def test_log_grows_without_the_token(host, monkeypatch):
    monkeypatch.setattr(sendmail_probe, "in_journal", lambda token, since: None)
    host.install("noise-only")
    probe = host.probe(timeout=1)["probes"][0]
    # Growth alone is not success: the record must carry this probe's token.
    assert (
        probe["reason"]
        == f"no record with token {PROBE_PREFIX}-{ME} among the 1 new lines of {host.log} in 1 s"
    )


def test_record_with_another_identity(host):
    host.install("wrong-uid")
    result = host.probe(timeout=1)
    assert result["failed"]
    uid = os.geteuid()
    assert result["probes"][0]["reason"] == (
        f"the record has uid {uid + 1} (name someone), expected {uid} ({ME})"
    )


def test_record_with_another_name(host):
    host.install("wrong-name")
    reason = host.probe(timeout=1)["probes"][0]["reason"]
    assert reason == f"the record has user name someone, expected {ME}"


def test_record_lacks_identity(host):
    host.install("no-uid")
    reason = host.probe(timeout=1)["probes"][0]["reason"]
    assert reason == "the record lacks the uid (user.id, classic uid): the caller's identity was not logged"


def test_line_with_token_is_not_json(host):
    host.install("not-json")
    reason = host.probe(timeout=1)["probes"][0]["reason"]
    assert reason.startswith(f"the line of {host.log} that carries the token is not JSON")


def test_unknown_user(host):
    host.install()
    result = host.probe(users=["no-such-user-sst"], timeout=1)
    assert result["reasons"] == ["no-such-user-sst: no user no-such-user-sst"]


def test_other_user_needs_root(host, monkeypatch):
    monkeypatch.setattr(sendmail_probe.os, "geteuid", lambda: 4242)
    host.install()
    probe = host.probe(users=["root"], timeout=1)["probes"][0]
    assert probe["reason"] == "sending as root needs root (become: true)"
    assert host.records() == []


def run_module(args: dict, capsys) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        sendmail_probe.main()
    return json.loads(capsys.readouterr().out)


def test_module_check_mode_sends_nothing(host, capsys):
    host.install()
    out = run_module(
        {"_ansible_check_mode": True, "sendmail": str(host.sendmail), "launcher": str(host.launcher),
         "log": str(host.log), "users": [ME]},
        capsys,
    )  # fmt: skip
    assert not out.get("failed") and out["changed"] is False
    assert out["summary"] == "check mode: no probe sent"
    assert host.records() == []


def test_module_reports_success_unchanged(host, capsys):
    host.install()
    out = run_module(
        {"sendmail": str(host.sendmail), "launcher": str(host.launcher), "log": str(host.log),
         "users": [ME], "check_setuid": False, "timeout": 5},
        capsys,
    )  # fmt: skip
    assert not out.get("failed")
    assert out["changed"] is False
    assert out["msg"] == out["summary"]
    assert out["probes"][0]["token"].startswith("sendmail-probe-")
    assert out["probes"][0]["ok"]


def test_module_fails_with_the_reason(host, capsys):
    out = run_module({"sendmail": str(host.sendmail), "log": str(host.log), "users": [ME]}, capsys)
    assert out["failed"] is True
    assert out["msg"] == NOT_INSTALLED.format(host.sendmail)


def test_module_rejects_zero_timeout(capsys):
    out = run_module({"timeout": 0}, capsys)
    assert out["failed"] is True
    assert "timeout must be at least 1" in out["msg"]


@pytest.fixture
def shared_host():
    """A host layout that an unprivileged user can traverse, run and write the log of."""
    if os.geteuid() != 0:
        pytest.skip("needs root: sends as another user")
    root = Path(tempfile.mkdtemp(prefix="sst-probe-", dir="/var/tmp"))
    root.chmod(0o755)
    host = Host(root)
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    host.log.parent.chmod(0o1777)
    host.log.chmod(0o666)
    yield host
    shutil.rmtree(root)


@pytest.mark.root
def test_as_nobody_and_root(shared_host):
    shared_host.install()
    nobody = pwd.getpwnam("nobody")
    result = shared_host.probe(users=["nobody", "root"])
    assert not result["failed"], result["reasons"]
    by_user = {p["user"]: p for p in result["probes"]}
    assert by_user["nobody"]["record"]["user"] == {"id": str(nobody.pw_uid), "name": "nobody"}
    assert by_user["root"]["record"]["user"] == {"id": "0", "name": "root"}
    # Sent like a plain local user: root's supplementary groups are not inherited.
    assert by_user["nobody"]["record"]["process"]["groups"] == []


@pytest.mark.root
def test_setuid_root_launcher_passes_the_check(shared_host):
    shared_host.install()
    os.chown(shared_host.launcher, 0, 0)
    shared_host.launcher.chmod(0o4755)
    if os.statvfs(shared_host.launcher).f_flag & os.ST_NOSUID:
        pytest.skip("/var/tmp is mounted nosuid here")
    result = shared_host.probe(check_setuid=True)
    assert not result["failed"], result["reasons"]
    assert stat.S_IMODE(shared_host.launcher.stat().st_mode) == 0o4755


def test_documentation_matches_the_argument_spec(host):
    doc = yaml.safe_load(sendmail_probe.DOCUMENTATION)
    assert doc["module"] == "sendmail_probe"
    documented = {
        name: {k: v for k, v in option.items() if k in ("type", "elements", "default", "choices")}
        for name, option in doc["options"].items()
    }
    # no_log is not documentation: only what a reader of the docs sees is compared.
    specified = {
        name: {k: v for k, v in option.items() if k != "no_log"}
        for name, option in sendmail_probe.ARGUMENT_SPEC.items()
    }
    assert documented == specified
    assert yaml.safe_load(sendmail_probe.EXAMPLES)
    returned = yaml.safe_load(sendmail_probe.RETURN)
    host.install()
    result = host.probe()
    assert set(returned) == set(result) - {"failed"}
    assert set(returned["probes"]["contains"]) == set(result["probes"][0])
