# SPDX-License-Identifier: MIT
"""Every role variable is declared in defaults and documented once, in argument_specs; the README points
at `ansible-doc -t role` instead of repeating them, and that command renders every one."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "sendmail_shim"
ANSIBLE_DOC = ROOT / ".venv" / "bin" / "ansible-doc"


def defaults():
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()) or {}


def argument_specs():
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return specs["main"]["options"]


def role_tags(tasks=None):
    """Every tag of tasks/main.yml, blocks included (the README lists them, and they look like variables)."""
    if tasks is None:
        tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    return (
        {tag for task in tasks for tag in task.get("tags", [])}
        | {tag for task in tasks for tag in role_tags(task.get("block", []))}
        if tasks
        else set()
    )


def test_every_default_is_prefixed_with_the_role_name():
    assert defaults()
    assert [name for name in defaults() if not name.startswith("sendmail_shim_")] == []


def test_defaults_and_argument_specs_declare_the_same_variables():
    assert set(defaults()) == set(argument_specs())


@pytest.mark.parametrize("name", sorted(argument_specs()) if ROLE.exists() else [])
def test_argument_spec_has_a_type_and_a_description(name):
    spec = argument_specs()[name]
    assert spec.get("type"), name
    assert spec.get("description"), name


def test_argument_spec_defaults_match_defaults_file():
    specs, values = argument_specs(), defaults()
    mismatched = [
        name for name, spec in specs.items() if "default" in spec and spec["default"] != values.get(name)
    ]
    assert mismatched == []


def test_readme_points_at_ansible_doc_and_describes_no_variable_itself():
    readme = (ROLE / "README.md").read_text()
    assert "ansible-doc -t role -r roles sendmail_shim" in readme
    # A variables table would be a second home for the descriptions.
    assert not re.search(r"^\|\s*`sendmail_shim_\w+`", readme, re.MULTILINE)
    named = set(re.findall(r"`(sendmail_shim_\w+)", readme))
    assert named - set(defaults()) - role_tags() == set(), "the README names variables the role does not have"


def test_ansible_doc_renders_every_variable():
    shown = subprocess.run(
        [str(ANSIBLE_DOC), "-t", "role", "-r", str(ROOT / "roles"), "sendmail_shim", "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    options = json.loads(shown.stdout)["sendmail_shim"]["entry_points"]["main"]["options"]
    assert set(options) == set(defaults())
