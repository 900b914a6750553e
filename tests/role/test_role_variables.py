"""Every role variable is declared in defaults, typed in argument_specs and documented in the role README."""

import re
from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "sendmail_shim"


def defaults():
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()) or {}


def argument_specs():
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return specs["main"]["options"]


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


def test_role_readme_documents_every_variable():
    readme = (ROLE / "README.md").read_text()
    missing = [name for name in defaults() if not re.search(rf"`{re.escape(name)}`", readme)]
    assert missing == []
