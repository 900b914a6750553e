#!/usr/bin/python
# SPDX-License-Identifier: MIT
# Copyright: the sendmail-shim authors (MIT License: LICENSE at the root of the sendmail-shim repository)
"""Ansible module sendmail_probe: proves end to end that a host's sendmail lands in the shim's log."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sendmail_probe
short_description: Send a unique probe through sendmail as given users and find each one in the shim's log
description:
  - For each user in O(users), pipes a message carrying a unique token into O(sendmail) as that user (fork,
    drop supplementary groups, setgid, setuid; no C(sudo) or C(runuser) needed), then waits at most
    O(timeout) seconds until a record carrying the token appears in O(log).
  - A probe passes when its record is found and the record's uid is the uid of the user that sent it (and
    its user name, when the record has one, is that user's name). That is what the shim promises; every
    message is logged with the real identity of its caller, whoever the caller is.
  - Reads both log formats through the shim's record schema (module_utils C(sendmail_shim_schema), a link
    to C(files/sendmail_shim/schema.py)) - C(user.id) and C(user.name) of ecs records, C(uid) and
    C(username) of classic ones.
  - The log is read only from the size it had just before the probes were sent, and a line is parsed as
    JSON only when it contains a probe token, so the cost does not grow with the size of the log. A rotation
    during the wait is followed (the old file is drained through the open descriptor, then the new file is
    read from its start).
  - When a probe fails the module says why, in this order of precedence - O(sendmail) missing or dangling;
    it resolves to something other than O(launcher) (the alternatives point elsewhere, so no probe is sent
    to a foreign MTA); the launcher is not setuid root or sits on a C(nosuid) mount; sendmail exited 75
    (the message went to the journal/syslog fallback instead of the log, and whether the journal has it);
    71 (launcher failure) or another status, with its stderr; the log does not exist; the log did not grow;
    the log grew but no line carries the token; the line is not a record; the record lacks the uid or
    names another identity.
  - Runs on the target as root (C(become) true) because it switches to other users. Without root it can only
    send as the user it runs as.
  - Each probe adds one record to the log, which is the point; the module still reports C(changed=false)
    because nothing about the host's configuration changed.
version_added: "1.0.0"
author: sendmail-shim maintainers (!UNKNOWN)
options:
  users:
    description:
      - Users to send a probe as, by name, one probe each. Give an unprivileged user (the default C(nobody))
        to prove the setuid path, and C(root) to prove that privileged callers are logged too.
    type: list
    elements: str
    default: [nobody, root]
  sendmail:
    description: The path callers use; on Debian the master link of the C(sendmail) alternative.
    type: path
    default: /usr/sbin/sendmail
  launcher:
    description: The installed setuid launcher that O(sendmail) must resolve to.
    type: path
    default: /usr/local/libexec/sendmail-shim/sendmail
  check_setuid:
    description:
      - Whether the launcher must be owned by root with the setuid bit, on a mount without C(nosuid).
      - Turn off only to probe a shim installed without a launcher (tests, unprivileged installs).
    type: bool
    default: true
  log:
    description: The shim's log, one JSON object per line.
    type: path
    default: /var/log/sendmail-shim/mail.ndjson
  recipient:
    description: Envelope and header recipient of the probes. The shim logs rather than delivers.
    type: str
    default: root
  timeout:
    description:
      - Seconds to wait, after the probes were sent, for all their records to appear in the log. The same
        bound applies to each sendmail process.
    type: int
    default: 30
  entry:
    description:
      - The entry point the probes' records must name (C(sendmail_shim.entry) of ecs records) - C(recorder)
        where the resident recorder's socket runs (docs/recorder.md), C(exec) where it does not.
      - Unset accepts either. Classic records do not name their entry, so with O(entry) set they fail.
    type: str
    choices: [recorder, exec]
  token:
    description:
      - Prefix of the probe tokens; each probe's token is this prefix, a dash and the user name.
      - Default a random C(sendmail-probe-<hex>), unique per run.
    type: str
notes:
  - Supports check mode - it then sends nothing, reads nothing and says so.
  - The summary line in RV(summary) is meant to be printed per host at the end of a verification play.
"""

EXAMPLES = r"""
- name: Probe the shim as nobody and as root
  mailshim.sendmail_shim.sendmail_probe:
  become: true

- name: Probe as an application user, waiting longer on a slow host
  mailshim.sendmail_shim.sendmail_probe:
    users: [www-data]
    timeout: 60
  become: true

- name: Collect the result without failing the host, to report all hosts together
  mailshim.sendmail_shim.sendmail_probe:
    users: ["{{ probe_user }}", root]
  vars:
    probe_user: daemon
  become: true
  register: probe
  failed_when: false

- name: Show the one-line summary
  ansible.builtin.debug:
    msg: "{{ probe.summary }}"
"""

RETURN = r"""
summary:
  description: One line for humans - C(ok) or C(FAILED), and per probe its result or its reason.
  returned: always
  type: str
  sample: "ok: nobody (uid 65534) logged in 0.21 s; root (uid 0) logged in 0.18 s"
reasons:
  description: Why probes failed, one entry per failed probe or per problem found before sending.
  returned: always
  type: list
  elements: str
  sample:
    - "/usr/sbin/sendmail resolves to /usr/sbin/exim4, not the launcher
      /usr/local/libexec/sendmail-shim/sendmail"
sendmail_realpath:
  description: What O(sendmail) resolves to, or null when it does not exist.
  returned: always
  type: str
  sample: /usr/local/libexec/sendmail-shim/sendmail
probes:
  description: One entry per user, in the order of O(users). Empty when nothing was sent.
  returned: always
  type: list
  elements: dict
  contains:
    user:
      description: User name the probe was sent as.
      type: str
    uid:
      description: That user's uid, which the record's uid (C(user.id), classic C(uid)) must equal.
      type: int
    token:
      description: The unique token in the probe's subject and body.
      type: str
    rc:
      description: Exit status of sendmail, or null when it could not be run or did not exit in time.
      type: int
    stderr:
      description: What sendmail wrote to stderr (the shim explains a fallback there).
      type: str
    seconds:
      description: Time from sending to the record being seen, or null when not seen.
      type: float
    record:
      description: The log record that carries the token, or null.
      type: dict
    in_journal:
      description: >-
        Whether the journal holds the token, checked only for probes that did not reach the log;
        null when not checked or when journalctl is absent.
      type: bool
    ok:
      description: Whether this probe passed.
      type: bool
    reason:
      description: Why it failed, or null.
      type: str
"""

import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.sendmail_shim_layout import ALTERNATIVE_LINK, LAUNCHER, LOG
from ..module_utils.sendmail_shim_schema import ENTRY, SchemaError, get_field, view

# Mirrors DOCUMENTATION's options (a unit test keeps the two equal, and the paths equal to the layout's).
ARGUMENT_SPEC = {
    "users": {"type": "list", "elements": "str", "default": ["nobody", "root"]},
    "sendmail": {"type": "path", "default": ALTERNATIVE_LINK},
    "launcher": {"type": "path", "default": LAUNCHER},
    "check_setuid": {"type": "bool", "default": True},
    "log": {"type": "path", "default": LOG},
    "recipient": {"type": "str", "default": "root"},
    "timeout": {"type": "int", "default": 30},
    "entry": {"type": "str", "choices": ["recorder", "exec"]},
    # A probe marker, not a secret: it is written to the log on purpose.
    "token": {"type": "str", "no_log": False},
}
EX_TEMPFAIL = 75
EX_OSERR = 71
POLL_SECONDS = 0.1


def link_chain(path):
    """The symlink hops from path to its target, for messages: a -> b -> c."""
    hops = [path]
    seen = set()
    while os.path.islink(hops[-1]) and hops[-1] not in seen and len(hops) < 10:
        seen.add(hops[-1])
        target = os.readlink(hops[-1])
        hops.append(os.path.normpath(os.path.join(os.path.dirname(hops[-1]), target)))
    return " -> ".join(hops)


def preflight(sendmail, launcher, check_setuid):
    """Problems visible without sending: (reasons that make sending pointless, other reasons, realpath)."""
    if not os.path.lexists(sendmail):
        missing = f"{sendmail} does not exist: the shim is not installed (apply mailshim.sendmail_shim.site)"
        return [missing], [], None
    realpath = os.path.realpath(sendmail)
    if not os.path.exists(realpath):
        return [f"{sendmail} is a dangling link: {link_chain(sendmail)}"], [], None
    if realpath != os.path.realpath(launcher):
        chain = link_chain(sendmail)
        if "/alternatives/" in chain:
            why = (
                f"the sendmail alternative points elsewhere ({chain}; "
                "see update-alternatives --display sendmail)"
            )
        else:
            # Debian's exim4 and postfix ship /usr/sbin/sendmail in their package, outside alternatives.
            why = f"it is not the alternatives link but another MTA's file ({chain}; see dpkg -S {sendmail})"
        reason = f"{sendmail} resolves to {realpath}, not the launcher {launcher}: {why}"
        return [f"{reason}; no probe sent, so that no mail goes to another MTA"], [], realpath
    problems = []
    if check_setuid:
        st = os.stat(realpath)
        if st.st_uid != 0 or not st.st_mode & stat.S_ISUID:
            problems.append(
                f"launcher {realpath} is not setuid root (owner uid {st.st_uid}, mode "
                f"{stat.S_IMODE(st.st_mode):04o}): unprivileged callers cannot reach the log"
            )
        elif os.statvfs(realpath).f_flag & os.ST_NOSUID:
            problems.append(f"launcher {realpath} is on a nosuid mount: the setuid bit has no effect")
    return [], problems, realpath


def probe_message(token, user, uid, recipient):
    return (
        f"To: {recipient}\n"
        f"Subject: sendmail-shim probe {token}\n"
        "\n"
        f"Probe {token} sent as {user} (uid {uid}) by the sendmail_probe module to check that this\n"
        "host's sendmail writes every message to the shim's log with its caller's identity.\n"
    ).encode()


def send_probe(sendmail, user, token, recipient, timeout):
    """Run sendmail as user with the probe on stdin. Returns the probe dict, without its verdict yet."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        entry = None
    probe = {
        "user": user,
        "uid": entry.pw_uid if entry else None,
        "token": token,
        "rc": None,
        "stderr": "",
        "reason": None,
    }
    if entry is None:
        probe["reason"] = f"no user {user}"
        return probe
    switch = {}
    if entry.pw_uid != os.geteuid():
        if os.geteuid() != 0:
            probe["reason"] = f"sending as {user} needs root (become: true)"
            return probe
        # The same identity a cron job of that user has: its uid, its primary group and no other group.
        switch = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": entry.pw_dir,
        "USER": user,
        "LOGNAME": user,
    }
    probe["sent_at"] = time.monotonic()
    try:
        proc = subprocess.run(
            [sendmail, "-i", recipient],
            input=probe_message(token, user, entry.pw_uid, recipient),
            capture_output=True,
            env=env,
            cwd="/",
            timeout=timeout,
            check=False,
            **switch,
        )
    except subprocess.TimeoutExpired:
        probe["reason"] = f"{sendmail} did not exit within {timeout} s"
        return probe
    except OSError as exc:
        probe["reason"] = f"could not run {sendmail} as {user}: {exc}"
        return probe
    probe["rc"] = proc.returncode
    probe["stderr"] = proc.stderr.decode(errors="replace").strip()
    return probe


class LogTail:
    """New complete lines of a log from the size it had when opened, across a rotation."""

    def __init__(self, path):
        self.path = path
        self.fh = None
        self.pending = b""
        self.new_bytes = 0
        self.new_lines = 0
        try:
            self.fh = open(path, "rb")  # noqa: SIM115 - held open across polls to survive a rotation
        except FileNotFoundError:
            return  # the first message creates the log: read it from its start once it exists
        self.fh.seek(0, os.SEEK_END)

    def close(self):
        if self.fh:
            self.fh.close()
            self.fh = None

    def _switched(self):
        """Whether the path now names another file than the one held open (rotated, or created)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        if self.fh is None:
            return True
        held = os.fstat(self.fh.fileno())
        return (st.st_dev, st.st_ino) != (held.st_dev, held.st_ino)

    def read_lines(self):
        lines = []
        if self.fh:
            lines += self._drain()
        if self._switched():
            # The rest of the rotated file was just drained through the open descriptor.
            self.close()
            self.pending = b""
            try:
                self.fh = open(self.path, "rb")  # noqa: SIM115 - see __init__
            except FileNotFoundError:
                return lines
            lines += self._drain()
        return lines

    def _drain(self):
        if os.fstat(self.fh.fileno()).st_size < self.fh.tell():
            # Truncated in place (logrotate copytruncate): what follows starts at 0.
            self.fh.seek(0)
            self.pending = b""
        data = self.fh.read()
        if not data:
            return []
        self.new_bytes += len(data)
        data = self.pending + data
        *complete, self.pending = data.split(b"\n")
        self.new_lines += len(complete)
        return complete


def in_journal(token, since_epoch):
    """Whether the journal holds the token since the probes were sent; None when there is no journal."""
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        return None
    try:
        proc = subprocess.run(
            [journalctl, "--no-pager", "-q", "-o", "cat", "--since", f"@{int(since_epoch) - 1}"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return token.encode() in proc.stdout


def match_records(lines, waiting, log):
    """Attach to each waiting probe the first line that carries its token, parsed."""
    for line in lines:
        for probe in waiting:
            if probe.get("seen") or probe["token"].encode() not in line:
                continue
            probe["seen"] = True
            probe["seconds"] = round(time.monotonic() - probe["sent_at"], 2)
            try:
                record = json.loads(line)
            except ValueError as exc:
                probe["reason"] = f"the line of {log} that carries the token is not JSON: {exc}"
                continue
            if isinstance(record, dict):
                probe["record"] = record
            else:
                probe["reason"] = f"the line of {log} that carries the token is not a JSON object"


def wait_for_records(tail, probes, timeout):
    """Polls the log until every probe that sendmail accepted has its record, or timeout passes."""
    waiting = [p for p in probes if p["rc"] == 0 and p["reason"] is None]
    deadline = time.monotonic() + timeout
    while True:
        match_records(tail.read_lines(), waiting, tail.path)
        if all(p.get("seen") for p in waiting) or time.monotonic() >= deadline:
            return
        time.sleep(POLL_SECONDS)


def identity_problem(record, probe, log):
    """Why the probe's record does not name the user that sent it (either log format), or None."""
    try:
        seen = view(record)
    except SchemaError as exc:
        return f"the line of {log} that carries the token is not a record: {exc}"
    if seen.user_id is None:
        return "the record lacks the uid (user.id, classic uid): the caller's identity was not logged"
    if str(seen.user_id) != str(probe["uid"]):
        expected = f"expected {probe['uid']} ({probe['user']})"
        return f"the record has uid {seen.user_id} (name {seen.user_name}), {expected}"
    if seen.user_name is not None and seen.user_name != probe["user"]:
        return f"the record has user name {seen.user_name}, expected {probe['user']}"
    return None


def entry_problem(record, entry):
    """Why the record did not come through the expected entry point, or None."""
    if entry is None:
        return None
    seen = get_field(record, ENTRY)
    if seen is None:
        return f"the record does not name its entry point ({ENTRY}), expected {entry}"
    if seen != entry:
        return f"the record came through the {seen} entry point, expected {entry}"
    return None


def verdict(probe, tail, log, timeout, since_epoch, *, entry=None):
    """Sets ok and reason of a probe after the wait."""
    record = probe.get("record")
    if probe["reason"] is None and record is None:
        rc, stderr = probe["rc"], probe["stderr"] or "nothing on stderr"
        if rc == EX_TEMPFAIL:
            probe["reason"] = f"sendmail exited 75: the message went to the fallback, not to {log}: {stderr}"
        elif rc == EX_OSERR:
            probe["reason"] = f"the launcher failed (exit 71), message not accepted: {stderr}"
        elif rc != 0:
            probe["reason"] = f"sendmail exited {rc}: {stderr}"
        elif not os.path.exists(log):
            probe["reason"] = f"log not written: {log} does not exist {timeout} s after sendmail exited 0"
        elif tail.new_bytes == 0:
            probe["reason"] = f"log not growing: sendmail exited 0 but {log} got nothing new in {timeout} s"
        else:
            probe["reason"] = (
                f"no record with token {probe['token']} among the {tail.new_lines} new lines of {log} "
                f"in {timeout} s"
            )
    elif probe["reason"] is None:
        probe["reason"] = identity_problem(record, probe, log) or entry_problem(record, entry)
    if probe["reason"] is not None and record is None and probe["rc"] is not None:
        probe["in_journal"] = in_journal(probe["token"], since_epoch)
        if probe["in_journal"]:
            probe["reason"] += " (the journal has it)"
    probe.setdefault("in_journal", None)
    probe["ok"] = probe["reason"] is None


def run_probes(users, *, sendmail, launcher, check_setuid, log, recipient, timeout, token, entry=None):
    """The whole check. Returns the module result (without changed), failed when any probe failed."""
    fatal, problems, realpath = preflight(sendmail, launcher, check_setuid)
    result = {"sendmail_realpath": realpath, "probes": [], "reasons": fatal + problems}
    if fatal:
        result["summary"] = "FAILED: " + fatal[0]
        result["failed"] = True
        return result
    since_epoch = time.time()
    tail = LogTail(log)
    try:
        # Once per user: verify_user may be root too, and one token must name one probe.
        probes = [
            send_probe(sendmail, user, f"{token}-{user}", recipient, timeout) for user in dict.fromkeys(users)
        ]
        wait_for_records(tail, probes, timeout)
        for probe in probes:
            verdict(probe, tail, log, timeout, since_epoch, entry=entry)
    finally:
        tail.close()
    for probe in probes:
        probe.pop("sent_at", None)
        probe.pop("seen", None)
        probe.setdefault("record", None)
        probe.setdefault("seconds", None)
    result["probes"] = probes
    result["reasons"] += [f"{p['user']}: {p['reason']}" for p in probes if not p["ok"]]
    parts = [
        f"{p['user']} (uid {p['uid']}) logged in {p['seconds']} s"
        if p["ok"]
        else f"{p['user']} (uid {p['uid']}): {p['reason']}"
        for p in probes
    ]
    failed = bool(result["reasons"])
    result["summary"] = ("FAILED: " if failed else "ok: ") + "; ".join(problems + parts)
    result["failed"] = failed
    return result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if not params["users"]:
        module.fail_json(msg="users must name at least one user")
    if params["timeout"] < 1:
        module.fail_json(msg=f"timeout must be at least 1 second, got {params['timeout']}")
    if module.check_mode:
        module.exit_json(
            changed=False,
            summary="check mode: no probe sent",
            reasons=[],
            probes=[],
            sendmail_realpath=None,
            msg="check mode: no probe sent, nothing verified",
        )
    result = run_probes(
        params["users"],
        sendmail=params["sendmail"],
        launcher=params["launcher"],
        check_setuid=params["check_setuid"],
        log=params["log"],
        recipient=params["recipient"],
        timeout=params["timeout"],
        token=params["token"] or f"sendmail-probe-{secrets.token_hex(6)}",
        entry=params["entry"],
    )
    if result.pop("failed"):
        module.fail_json(msg="; ".join(result["reasons"]), changed=False, **result)
    module.exit_json(msg=result["summary"], changed=False, **result)


if __name__ == "__main__":
    main()
