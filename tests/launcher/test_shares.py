# SPDX-License-Identifier: MIT
"""One local user cannot stall another's mail (docs/threat-model.md, "One uid holds every slot").

The caller attacks as issue 23's review did: it starts as many launchers as the recorder has connections,
each with a FIFO opened read-write as its stdin, feeds each held message up to the kept size, and kills
its launchers. The recorder's copy of such a FIFO is itself a writer, so those messages never end. Then
another user, root and a NoNewPrivileges caller must still reach the recorder, the caller's own next
message must take the exec path at once, a subordinate uid of the caller must count as the caller, and
the recorder must hold no more for it than its share.
"""

# SPDX-License-Identifier: MIT

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from launcher_support import Recorder, User, as_user, run, wait_for

pytestmark = pytest.mark.root

BOUND = 16
SHARE = BOUND // 8  # one uid's share, and root's kept apart (docs/recorder.md, "Shares")
KEPT = 8 << 20  # max_message_bytes by default: what the recorder keeps of one message
READ = 64 << 10  # and one read beside it
# A range no test host gives anybody, made the caller's in /etc/subuid for one test.
SUBORDINATE = 3_000_000


def message(subject: str) -> bytes:
    return f"From: app@example.org\nTo: ops@example.org\nSubject: {subject}\n\nbody\n".encode()


def _took_the_exec_path(pid: int) -> bool:
    """Whether the launcher `pid` fell back: it has become the shim's interpreter."""
    try:
        return b"__main__.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def held_connections(recorder: Recorder) -> int:
    """Connections the recorder holds: one thread each, beside its main thread."""
    return len(os.listdir(f"/proc/{recorder.proc.pid}/task")) - 1


def memory(recorder: Recorder, field: str) -> int:
    """A Vm* field of the recorder's /proc/PID/status, in bytes."""
    for line in Path(f"/proc/{recorder.proc.pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in the recorder's status")


@dataclasses.dataclass(frozen=True)
class Attack:
    shim: object
    resting: int  # the recorder's resident memory before the attack
    errors_from: int  # where the recorder's stderr stood before the attack

    def records(self, subject: str) -> list[dict]:
        return [r for r in self.shim.any_records() if r["email"]["subject"] == subject]

    def recorder_log(self) -> str:
        return self.shim.recorder.errors.read_bytes()[self.errors_from :].decode(errors="replace")


@pytest.fixture(scope="module")
def attacked(_shim_install, caller, prefix):
    """The caller holds its share of a recorder with BOUND connections, with messages that never end."""
    shim = dataclasses.replace(_shim_install, path="recorder")
    config = prefix / "etc" / "attacked.conf"
    config.write_text(f"{shim.config.read_text()}recorder_max_connections = {BOUND}\n")
    config.chmod(0o644)
    recorder = shim.recorder
    errors_from = recorder.errors.stat().st_size if recorder.errors.exists() else 0
    recorder.start(config)
    resting = memory(recorder, "VmRSS")
    fifos = prefix / "attacker"
    fifos.mkdir(mode=0o700)
    os.chown(fifos, caller.uid, caller.gid)
    launchers = []
    try:
        for i in range(BOUND):
            fifo = fifos / f"fifo-{i}"
            os.mkfifo(fifo, 0o600)
            os.chown(fifo, caller.uid, caller.gid)
            launchers.append((fifo, subprocess.Popen(
                as_user(caller, "sh", "-c", 'exec "$0" ops@example.org 0<>"$1"', shim.launcher, fifo),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={},
            )))  # fmt: skip
        # Each launcher either fell back or is held by the recorder: the tests say how many are which.
        fell_back = lambda: sum(_took_the_exec_path(p.pid) for _, p in launchers)  # noqa: E731
        wait_for(lambda: fell_back() + held_connections(recorder) == BOUND, timeout=60)
        for fifo, proc in launchers:
            if not _took_the_exec_path(proc.pid):
                # The kept size and more: the recorder keeps what it may and reads on.
                fd = os.open(fifo, os.O_WRONLY)
                os.write(fd, b"Subject: held\n\n")
                for _ in range((KEPT >> 16) + 16):
                    os.write(fd, b"x" * 65535 + b"\n")
                os.close(fd)
            proc.kill()
            proc.wait(timeout=30)
        yield Attack(shim, resting, errors_from)
    finally:
        for _, proc in launchers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        # The held messages never end: SIGTERM would wait for them.
        recorder.kill()
        shutil.rmtree(fifos)


def test_another_uid_root_and_a_no_new_privs_caller_reach_the_recorder_meanwhile(attacked, bystander):
    launcher = attacked.shim.launcher
    for subject, argv in [
        ("bystander", as_user(bystander, launcher, "ops@example.org")),
        ("no-new-privs", as_user(bystander, launcher, "ops@example.org", nnp=True)),
        ("root", [launcher, "ops@example.org"]),
    ]:
        proc = run(argv, stdin=message(subject))
        assert (proc.returncode, proc.stderr) == (0, b""), subject
        [rec] = attacked.records(subject)
        assert rec["sendmail_shim"]["entry"] == "recorder", subject
    # And the attacker's messages are still held: they returned while it holds its share (the threads of
    # the messages just recorded may take a moment to end).
    wait_for(lambda: held_connections(attacked.shim.recorder) == SHARE)


def test_past_its_share_the_attackers_next_message_takes_the_exec_path_at_once(attacked, caller):
    """As `out=$(... | sendmail)` does: the launcher fell back, so nothing else holds its stdout, and the
    command substitution ends as soon as the shim does."""
    script = 'out=$(printf "Subject: spilled\\n\\nx\\n" | "$0" ops@example.org); echo "returned $? [$out]"'
    proc = run(as_user(caller, "sh", "-c", script, attacked.shim.launcher))
    assert (proc.stdout, proc.stderr) == (b"returned 0 []\n", b"")
    [rec] = attacked.records("spilled")
    assert rec["sendmail_shim"]["entry"] == "exec"
    assert rec["user"]["id"] == str(caller.uid)
    # The attacker's BOUND - SHARE refusals and this one: one line in the recorder's log.
    refusals = [line for line in attacked.recorder_log().splitlines() if f" uid {caller.uid} " in line]
    assert len(refusals) == 1, refusals
    assert f"its share of {SHARE} connections" in refusals[0]


def test_a_subordinate_uid_of_the_attacker_counts_as_the_attacker(attacked, caller, bystander):
    proc = run(as_user(bystander, attacked.shim.launcher, "ops@example.org"), stdin=message("beside"))
    assert proc.returncode == 0, proc.stderr
    subuid = Path("/etc/subuid")
    before = subuid.read_bytes() if subuid.exists() else None
    try:
        subuid.write_bytes((before or b"") + f"{caller.name}:{SUBORDINATE}:65536\n".encode())
        inside = User("subordinate", SUBORDINATE + 7, SUBORDINATE + 7)
        proc = run(as_user(inside, attacked.shim.launcher, "ops@example.org"), stdin=message("subordinate"))
        assert proc.returncode == 0, proc.stderr
    finally:
        if before is None:
            subuid.unlink()
        else:
            subuid.write_bytes(before)
    [rec] = attacked.records("subordinate")
    assert (rec["sendmail_shim"]["entry"], rec["user"]["id"]) == ("exec", str(SUBORDINATE + 7))
    # While a uid that is not the caller's still reaches the recorder.
    [rec] = attacked.records("beside")
    assert rec["sendmail_shim"]["entry"] == "recorder"


def test_what_one_uid_pins_in_the_recorder_stays_within_its_share(attacked):
    pinned = memory(attacked.shim.recorder, "VmHWM") - attacked.resting
    # Its share of kept messages and reads, and room for their threads and the allocator's slack.
    assert pinned < SHARE * (KEPT + READ) + (8 << 20), f"{pinned >> 20} MiB"
