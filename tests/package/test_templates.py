# SPDX-License-Identifier: MIT
"""The package's files as rendered from files/package/ with the layout, before any build."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import systemd_units
from sendmail_shim import config

REPO = Path(__file__).resolve().parents[2]
TREE = REPO / "scripts" / "install-tree.py"


def render(template: str) -> str:
    return subprocess.run(
        [sys.executable, str(TREE), "render", str(REPO / template)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_packaged_config_sets_nothing_and_comments_every_key_at_its_default():
    text = render("files/package/sendmail-shim.conf.in")
    cfg, problems = config.parse(text, "packaged")
    assert problems == []
    assert vars(cfg) == {**vars(config.Config()), "path": "packaged"}
    # Uncommented, the `#key = value` lines are a valid file that restates the defaults.
    settings = [line[1:] for line in text.splitlines() if re.match(r"#[a-z_]+ = \S", line)]
    uncommented, problems = config.parse("\n".join(settings), "uncommented")
    assert problems == []
    assert {line.split(" = ")[0] for line in settings} == set(config._KEYS) - {"hostname"}
    assert "#hostname =" in text.splitlines()
    assert vars(uncommented) == {**vars(config.Config()), "path": "uncommented"}


def test_every_template_renders_without_a_leftover_token():
    for template in [*(REPO / "files" / "package").glob("*.in"), *(REPO / "debian").glob("*.in")]:
        text = render(str(template.relative_to(REPO)))
        assert "@" + "maintainer_functions@" not in text
        assert "@\n" not in text and "@ " not in text.replace('"$@"', ""), template


def test_unknown_token_fails_the_render(tmp_path):
    template = tmp_path / "bad.in"
    template.write_text("x @no_such_key@ y\n")
    proc = subprocess.run(
        [sys.executable, str(TREE), "render", str(template)], capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "unknown token @no_such_key@" in proc.stderr


def test_design_doc_shows_the_layouts_paths():
    layout = json.loads((REPO / "files" / "sendmail_shim" / "layout.json").read_text())
    design = (REPO / "docs" / "design.md").read_text()
    keys = (
        "launcher",
        "admin_command",
        "config",
        "config_dir",
        "state_dir",
        "log",
        "logrotate",
        "recorder_socket_path",
    )
    for key in keys:
        assert f"`{layout[key]}" in design, key
    for key in ("log_dir", "systemd_unit_dir"):
        assert f"`{layout[key]}/" in design, key
    assert f"`{layout['libdir']}/sendmail_shim/`" in design
    units = layout["systemd_unit_dir"]
    for key in ("listener_socket", "recorder_socket"):
        assert f"`{units}/{layout[key]}`" in design, key
    for key in ("listener_service", "recorder_service"):
        assert f"`{layout[key]}`" in design, key


LAYOUT = json.loads((REPO / "files" / "sendmail_shim" / "layout.json").read_text())


def test_recorder_socket_is_the_layouts_path_owned_by_the_dedicated_user_in_a_root_directory():
    unit = systemd_units.parse(render("files/package/recorder.socket.in"))
    single = functools.partial(systemd_units.single, unit, "Socket")
    assert unit["Socket"]["ListenStream"] == [LAYOUT["recorder_socket_path"]]
    assert (single("SocketUser"), single("SocketGroup")) == (LAYOUT["user"], LAYOUT["group"])
    # Anybody may connect (the kernel names the caller); the directory is root's and nobody else's.
    assert (single("SocketMode"), single("DirectoryMode")) == ("0666", "0755")
    assert single("Accept") == "no"
    assert 64 <= int(single("Backlog")) <= 4096
    assert single("RemoveOnStop") == "yes"
    assert unit["Install"] == {"WantedBy": ["sockets.target"]}


def test_recorder_service_runs_the_recorder_as_the_dedicated_user_and_stops_with_its_socket():
    unit = systemd_units.parse(render("files/package/recorder.service.in"))
    service = functools.partial(systemd_units.single, unit, "Service")
    assert service("ExecStart") == f"{LAYOUT['python']} -I -S {LAYOUT['libdir']}/sendmail_shim/recorder.py"
    assert (service("User"), service("Group")) == (LAYOUT["user"], LAYOUT["group"])
    assert unit["Unit"]["Requires"] == unit["Unit"]["After"] == [LAYOUT["recorder_socket"]]
    # Socket-activated only: enabling it alone would start a recorder without its socket.
    assert "Install" not in unit


def test_recorder_service_is_sandboxed_to_the_log_directory_and_unix_sockets():
    unit = systemd_units.parse(render("files/package/recorder.service.in"))
    service = unit["Service"]
    assert service["ReadWritePaths"] == [LAYOUT["log_dir"]]
    for key, value in {
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateNetwork": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_UNIX",
        "RestrictNamespaces": "yes",
        "MemoryDenyWriteExecute": "yes",
        "UMask": "0027",
    }.items():
        assert service[key] == [value], key
    assert "@system-service" in service["SystemCallFilter"]
    # It reads /proc/<pid>/stat of other users' processes (the caller's parent), and SO_PEERCRED must see
    # callers' uids as they are (a private user namespace would map them to the overflow uid).
    assert "ProtectProc" not in service
    assert "PrivateUsers" not in service
    assert "DynamicUser" not in service
