# SPDX-License-Identifier: MIT
"""Every message starts an interpreter: the cron path must not import the heavy stdlib modules.

json alone pulls in re and enum, about 7 ms of a 12 ms start on the test machine (a regression that
`make bench` caught when the layout was first read with json). The shim uses _json's C parts instead.
threading and socket are the recorder's: the core both entry points share stays without them.
"""

import os
import subprocess

from shimtest import CRON_MESSAGE, FILES, PYTHON

HEAVY = ("json", "re", "enum", "email", "hashlib", "select", "subprocess", "threading", "socket")


def test_cron_message_imports_no_heavy_module(tmp_path):
    conf = tmp_path / "shim.conf"
    conf.write_text(f"log_path = {tmp_path / 'mail.ndjson'}\n")
    run = subprocess.run(
        [PYTHON, "-X", "importtime", "-I", "-S", str(FILES / "sendmail_shim" / "__main__.py"),
         "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "user"],
        input=CRON_MESSAGE,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SENDMAIL_SHIM_CONFIG": str(conf)},
        capture_output=True,
        check=True,
    )  # fmt: skip
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.decode().splitlines() if "|" in line}
    assert "sendmail_shim.record" in imported, run.stderr.decode()[-2000:]
    assert sorted(imported & set(HEAVY)) == []
    assert (tmp_path / "mail.ndjson").read_bytes().count(b"\n") == 1
