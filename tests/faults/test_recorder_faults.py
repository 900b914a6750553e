# SPDX-License-Identifier: MIT
"""Faults of the recorder path (issue 18): the recorder going away under a burst, and callers the
launcher's rule sends back to the exec path, with nothing lost and nothing recorded twice.

The caller here is what the launcher does: hand over to the recorder (tests/handoff.py), and when no
recorder took the message (status 69: no socket, refused, no "A"), run the exec path on the same stdin,
which nobody has read.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from faults_support import burst_while, token_of
from shimtest import HANDOFF, PYTHON, Recorder, read_log

BURST = re.compile(r"sst-burst-\d+")
# The launcher's fallback rule, in shell: exec path only when the recorder never accepted the message.
LAUNCHER_RULE = (
    f'{PYTHON} -I -S {HANDOFF} "$0" sendmail "$@"; status=$?; [ "$status" -eq 69 ] || exit "$status"; '
    f'exec {PYTHON} -m sendmail_shim "$@"'
)


@pytest.mark.recorder_only(reason="restarts the recorder")
def test_recorder_restarted_during_a_burst_loses_and_duplicates_nothing(shim):
    socket_path = shim.recorder.socket
    shim.command = ["sh", "-c", LAUNCHER_RULE, str(socket_path)]
    restarts = []

    def restart():
        time.sleep(0.5)
        recorder = shim.recorder
        assert recorder.stop() == 0, recorder.log()
        # A gap without a recorder: callers then take the exec path.
        time.sleep(0.3)
        shim.recorder = Recorder(shim.config, socket_path.parent, shim.user).start()
        restarts.append(time.monotonic())

    statuses = burst_while(shim, "sst-burst", 300, restart)
    assert len(restarts) >= 3, "the burst ended before the recorder was restarted a few times"
    assert statuses == [0] * 300
    records = read_log(shim.log)
    tokens = Counter(token_of(r, BURST) for r in records)
    assert tokens == Counter(f"sst-burst-{i}" for i in range(300))
    entries = Counter(r["sendmail_shim"]["entry"] for r in records)
    assert entries["recorder"] > 0 and entries["exec"] > 0, entries
