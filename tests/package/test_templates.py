"""The package's files as rendered from files/package/ with the layout, before any build."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

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
    for key in ("launcher", "admin_command", "config", "config_dir", "state_dir", "log", "logrotate"):
        assert f"`{layout[key]}" in design, key
    for key in ("log_dir", "systemd_unit_dir"):
        assert f"`{layout[key]}/" in design, key
    assert f"`{layout['libdir']}/sendmail_shim/`" in design
