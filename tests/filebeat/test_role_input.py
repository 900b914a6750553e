# SPDX-License-Identifier: MIT
"""The role's Filebeat tasks on this host: version, identity of an existing input, validation by a real run.

Needs root: the role writes the input owned by root.
"""

import os

import pytest
from filebeat_support import filebeat_home, playbook

pytestmark = pytest.mark.root

FAKE_8_11 = """#!/bin/sh
# Stands in for a Filebeat 8.11 (none runs here): answers the version, accepts every input.
if [ "$1" = version ]; then echo "filebeat version 8.11.0 (amd64), libbeat 8.11.0"; fi
exit 0
"""
FINGERPRINT_INPUT = """- type: filestream
  id: sendmail-shim
  paths: [/var/log/sendmail-shim/mail.ndjson]
  file_identity.fingerprint: ~
"""
NATIVE_INPUT = """- type: filestream
  id: sendmail-shim
  paths: [/var/log/sendmail-shim/mail.ndjson]
"""


@pytest.fixture
def apply(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: the role writes the input owned by root")
    inputs_dir = tmp_path / "inputs.d"
    fake = tmp_path / "filebeat-8.11"
    fake.write_text(FAKE_8_11)
    fake.chmod(0o755)

    def run(command="real", existing=None, **role_vars):
        if existing is not None:
            inputs_dir.mkdir(exist_ok=True)
            (inputs_dir / "sendmail-shim.yml").write_text(existing)
        commands = {"real": filebeat_home() / "filebeat", "8.11": fake, "missing": tmp_path / "no-filebeat"}
        role_vars = {
            "sendmail_shim_filebeat_inputs_dir": str(inputs_dir),
            "sendmail_shim_filebeat_command": str(commands[command]),
            "_sendmail_shim_log_path": str(tmp_path / "log" / "mail.ndjson"),
            # The handlers' guard, which mta_facts sets when the whole role runs: no systemd here.
            "_sendmail_shim_systemd": False,
            **role_vars,
        }
        role = {"name": "mailshim.sendmail_shim.sendmail_shim", "tasks_from": "filebeat.yml"}
        task = {"ansible.builtin.include_role": role}
        done = playbook(tmp_path / "play.yml", [task], role_vars)
        written = inputs_dir / "sendmail-shim.yml"
        return done, written.read_text() if written.exists() else None

    return run


def has_fingerprint(text):
    return "file_identity.fingerprint: ~" in text and "prospector.scanner.fingerprint:" in text


def test_detected_8_1_3_gets_no_fingerprint_and_passes_its_own_run(apply):
    done, text = apply()
    assert done.returncode == 0, done.stdout
    assert not has_fingerprint(text)
    assert "Identity by device and inode" in text


def test_a_fingerprint_input_is_refused_by_the_real_8_1_3_and_not_installed(apply):
    # The variable claims 8.11; the host's real Filebeat (8.1.3) runs the new input once and refuses it.
    done, text = apply(sendmail_shim_filebeat_version="8.11.0")
    assert done.returncode != 0
    assert "no such file_identity generator: fingerprint" in done.stdout
    assert text is None


def test_an_input_filebeat_refuses_leaves_the_old_one_in_place(apply):
    done, text = apply(existing=NATIVE_INPUT, sendmail_shim_filebeat_message_max_bytes="ten")
    assert done.returncode != 0
    assert "Exiting: Failed to start crawler" in done.stdout and "message_max_bytes" in done.stdout
    assert text == NATIVE_INPUT


def test_a_new_input_on_8_10_or_later_gets_fingerprint(apply):
    done, text = apply(command="8.11")
    assert done.returncode == 0, done.stdout
    assert has_fingerprint(text)
    assert "length: 64" in text


def test_an_existing_input_keeps_its_identity(apply):
    done, text = apply(command="8.11", existing=NATIVE_INPUT)
    assert done.returncode == 0, done.stdout
    assert not has_fingerprint(text) and "parsers:" in text
    done, text = apply(command="8.11", existing=FINGERPRINT_INPUT)
    assert done.returncode == 0, done.stdout
    assert has_fingerprint(text)


def test_an_existing_fingerprint_input_that_8_1_3_never_ran_is_repaired(apply):
    done, text = apply(existing=FINGERPRINT_INPUT)
    assert done.returncode == 0, done.stdout
    assert not has_fingerprint(text) and "parsers:" in text


def test_without_a_filebeat_the_input_suits_every_8_x(apply):
    done, text = apply(command="missing")
    assert done.returncode == 0, done.stdout
    assert not has_fingerprint(text)
