# SPDX-License-Identifier: MIT
"""Records as the shim writes them, and logs of many records, for the report's tests."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

FILES = pathlib.Path(__file__).resolve().parents[2] / "files"


@pytest.fixture
def write_record(tmp_path):
    """Runs the shim from the checkout on a message; returns the record it appended to its log."""

    def write(message, *args, config=""):
        log = tmp_path / "mail.ndjson"
        conf = tmp_path / "shim.conf"
        conf.write_text(f"log_path = {log}\nhostname = web01\n{config}")
        env = dict(os.environ, SENDMAIL_SHIM_CONFIG=str(conf), PYTHONPATH=str(FILES))
        subprocess.run(
            [sys.executable, "-m", "sendmail_shim", "-i", *(args or ("root",))],
            input=message,
            env=env,
            check=True,
            capture_output=True,
        )
        return json.loads(log.read_text().splitlines()[-1])

    return write
