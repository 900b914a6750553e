# SPDX-License-Identifier: MIT
"""A stand-in for /dev/log shared by the test suites.

A unix datagram socket drained by a thread, as a syslog daemon would (the kernel queues only a few
datagrams per socket, and a full queue would block the shim), and the shim's fallback records
reassembled from their numbered parts, the way docs/record.md tells an operator to.
"""

import os
import re
import socket
import threading
import time

from shimtest import strict_loads

# "<pri>Mmm dd hh:mm:ss sendmail-shim[pid]: ID i/n PART" (files/sendmail_shim/fallback.py)
_PART = re.compile(
    rb"^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d sendmail-shim\[\d+\]: ([0-9a-f]+) (\d+)/(\d+) (.*)$", re.S
)


class SyslogStub:
    def __init__(self, path, settle=0.1):
        self.path = str(path)
        self.settle = settle
        self.datagrams = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        # Like /dev/log: every sender may write, also a shim running as another user.
        os.chmod(self.path, 0o666)  # noqa: S103
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        while not self._stop.is_set():
            try:
                self.datagrams.append(self._sock.recv(1 << 16))
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def received(self):
        """Every datagram so far, once `settle` seconds passed without a new one: a finished shim's
        datagrams are all queued already."""
        count = -1
        while count != len(self.datagrams):
            count = len(self.datagrams)
            time.sleep(self.settle)
        return list(self.datagrams)

    def records(self):
        """Every complete record received so far, by event id, parsed as strict JSON."""
        parts, totals = {}, {}
        for datagram in self.received():
            match = _PART.match(datagram)
            if match:
                event, number, total, text = match.groups()
                parts.setdefault(event, {})[int(number)] = text
                totals[event] = int(total)
        complete = {}
        for event, got in parts.items():
            if sorted(got) == list(range(1, totals[event] + 1)):
                joined = b"".join(got[n] for n in sorted(got))
                complete[event.decode()] = strict_loads(joined.decode("ascii"))
        return complete

    def record(self, event_id=None):
        """The record with that event id, or the only record when none is named."""
        records = self.records()
        assert records, f"no record in syslog ({len(self.datagrams)} datagrams)"
        if event_id is not None:
            return records[event_id]
        (only,) = records.values()
        return only
