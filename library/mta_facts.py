#!/usr/bin/python
# SPDX-License-Identifier: MIT
# Copyright: the sendmail-shim authors (MIT License: LICENSE at the root of the sendmail-shim repository)
"""Ansible module: what delivers mail on a Debian-family host, for the sendmail_shim role."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mta_facts
short_description: Gather facts about the mail transport agent of a Debian-family host
description:
  - Lists the installed packages that provide C(mail-transport-agent), and which of a list of known MTA
    packages are installed or only left their configuration files behind.
  - Tells what C(/usr/sbin/sendmail) resolves to and who owns it, a package (C(dpkg-query -S)) or the
    alternatives system (C(update-alternatives --query sendmail)).
  - Reports the installed sendmail-shim version (C(__version__) of the installed package, read without
    importing it).
  - Tells whether systemd runs the host (the C(sd_booted) test), since how an MTA's services are handled
    depends on it (image builds and init-less containers have no running systemd).
  - Reports the state of the files and systemd units that replace the MTA (O(files), O(units)), so that a
    caller can skip the tasks with nothing to do (each task costs a round trip to the host).
  - Fails with one line on a host without dpkg (not of the Debian family).
  - Reads only; it never changes the host.
version_added: "1.0.0"
author: sendmail-shim maintainers (!UNKNOWN)
options:
  sendmail_path:
    description: Path of the sendmail program that callers run.
    type: path
    default: /usr/sbin/sendmail
  alternative_name:
    description: Name of the alternatives link group of O(sendmail_path).
    type: str
    default: sendmail
  shim_libdir:
    description: Directory that holds the installed C(sendmail_shim) Python package.
    type: path
    default: /usr/local/lib/sendmail-shim
  known_mta_packages:
    description:
      - MTA packages to report even when they do not provide C(mail-transport-agent) themselves
        (for example C(exim4-base), C(exim4-config)).
    type: list
    elements: str
    default: []
  files:
    description: Files whose existence and SHA-1 to report.
    type: list
    elements: path
    default: []
  units:
    description: systemd units whose C(systemctl is-enabled) and C(is-active) states to report.
    type: list
    elements: str
    default: []
  systemd_runtime_dir:
    description: The directory whose presence means that systemd runs the host.
    type: path
    default: /run/systemd/system
  packages:
    description: Packages whose installed version to report (for example C(sendmail-shim), C(rsyslog)).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    description: Reads only, so a dry run reports what the host has.
    support: full
  diff_mode:
    description: Changes nothing, so there is nothing to show.
    support: none
  facts:
    description: Returns its results under C(ansible_facts.mta_facts).
    support: full
requirements:
  - dpkg-query and update-alternatives (Debian, Ubuntu)
notes:
  - The results are returned both as facts (C(ansible_facts.mta_facts)) and as top-level return values.
"""

EXAMPLES = r"""
- name: Gather MTA facts
  mailshim.sendmail_shim.mta_facts:
    known_mta_packages: [exim4-base, exim4-config, postfix]

- name: Show the packages that provide mail-transport-agent
  ansible.builtin.debug:
    msg: "{{ ansible_facts.mta_facts.mta_packages | map(attribute='name') | list }}"

- name: Fail when /usr/sbin/sendmail is not the shim's launcher
  ansible.builtin.assert:
    that: ansible_facts.mta_facts.sendmail.resolved == '/usr/local/libexec/sendmail-shim/sendmail'
"""

RETURN = r"""
mta_packages:
  description: Installed packages that provide C(mail-transport-agent) (sendmail-shim included).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "exim4-daemon-light", "version": "4.96-15+deb12u6", "status": "installed"}]
known_mta_packages:
  description: Packages of O(known_mta_packages) present on the host, installed or with config files only.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "exim4-config", "version": "4.96-15+deb12u6", "status": "config-files"}]
sendmail:
  description: What O(sendmail_path) is and who owns it.
  returned: always
  type: dict
  contains:
    path:
      description: O(sendmail_path).
      type: str
      sample: /usr/sbin/sendmail
    exists:
      description: Whether the path resolves to an existing file.
      type: bool
    is_link:
      description: Whether the path itself is a symbolic link.
      type: bool
    resolved:
      description: The path with every symbolic link resolved, or null when it does not exist.
      type: str
      sample: /usr/local/libexec/sendmail-shim/sendmail
    package:
      description: The package that owns O(sendmail_path) (C(dpkg-query -S)), or null.
      type: str
      sample: exim4-daemon-light
    alternative:
      description: The O(alternative_name) alternatives group, or null when it does not exist.
      type: dict
      contains:
        name: {description: Group name., type: str}
        link: {description: Master link., type: str}
        status: {description: C(auto) or C(manual)., type: str}
        value: {description: "Current choice, or null.", type: str}
        best: {description: "Choice of highest priority, or null.", type: str}
        alternatives:
          description: Every registered choice with its priority and slaves.
          type: list
          elements: dict
          sample: [{"path": "/usr/local/libexec/sendmail-shim/sendmail", "priority": 100,
                    "slaves": {"mailq": "/usr/local/libexec/sendmail-shim/sendmail"}}]
packages:
  description: >-
    Installed version of each package of O(packages), by name; null for one that is not installed (or has
    only its configuration files left).
  returned: always
  type: dict
  sample: {"sendmail-shim": "1.2.0-1", "rsyslog": null}
files:
  description: For each of O(files), whether it exists and the SHA-1 of its content (null if no regular file).
  returned: always
  type: dict
  sample: {"/etc/sendmail-shim.conf.d/50-ansible.conf": {"exists": true, "sha1": "4f0b..."}}
units:
  description: >-
    For each of O(units), its C(systemctl is-enabled) and C(is-active) answers (for example C(disabled),
    C(inactive)); C(unknown) for both where systemctl is missing.
  returned: always
  type: dict
  sample: {"sendmail-shim-smtp.socket": {"enabled": "disabled", "active": "inactive"}}
systemd_booted:
  description: Whether systemd runs the host (C(/run/systemd/system) is a directory).
  returned: always
  type: bool
architecture:
  description: The host's Debian architecture (C(dpkg --print-architecture)), the one its packages must have.
  returned: always
  type: str
  sample: arm64
shim_version:
  description: C(__version__) of the installed sendmail_shim package; null when absent or not defined.
  returned: always
  type: str
  sample: "1.0.0"
"""

import hashlib
import os
import re

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.sendmail_shim_layout import ALTERNATIVE_LINK, ALTERNATIVE_NAME, LIBDIR

# Mirrors DOCUMENTATION's options (a unit test keeps the two equal, and the paths equal to the layout's).
ARGUMENT_SPEC = {
    "sendmail_path": {"type": "path", "default": ALTERNATIVE_LINK},
    "alternative_name": {"type": "str", "default": ALTERNATIVE_NAME},
    "shim_libdir": {"type": "path", "default": LIBDIR},
    "known_mta_packages": {"type": "list", "elements": "str", "default": []},
    "packages": {"type": "list", "elements": "str", "default": []},
    "files": {"type": "list", "elements": "path", "default": []},
    "units": {"type": "list", "elements": "str", "default": []},
    "systemd_runtime_dir": {"type": "path", "default": "/run/systemd/system"},
}

# ${db:Status-Abbrev} is three letters: desired action, package status, error flag. The second letter
# says what is on disk: "c" only configuration files, "n" nothing; anything else has files installed
# (installed, unpacked, half-configured, awaiting triggers...).
_STATUS = {"i": "installed", "c": "config-files", "n": "not-installed"}
_DPKG_FORMAT = "${Package}\t${Version}\t${db:Status-Abbrev}\t${Provides}\n"
_VERSION_RE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)


def parse_dpkg_list(output):
    """Parses dpkg-query -W output in _DPKG_FORMAT into {name: {name, version, status, provides}}."""
    packages = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) != 4:
            continue
        name, version, abbrev, provides = fields
        state = abbrev[1:2]
        if state in ("", "n"):
            continue
        packages[name.split(":")[0]] = {
            "name": name.split(":")[0],
            "version": version,
            "status": _STATUS.get(state, "partly-installed"),
            # "mail-transport-agent, foo (= 1.0)": names without version constraints.
            "provides": [p.strip().split(" ")[0] for p in provides.split(",") if p.strip()],
        }
    return packages


def parse_dpkg_search(output):
    """Returns the owner package from dpkg-query -S output, skipping diversion lines."""
    for line in output.splitlines():
        if line.startswith(("diversion by", "local diversion")) or ": " not in line:
            continue
        return line.split(": ", 1)[0].split(",")[0].split(":")[0].strip()
    return None


def parse_alternatives_query(output):
    """Parses update-alternatives --query output (stanzas separated by blank lines)."""
    stanzas = [s for s in output.strip().split("\n\n") if s.strip()]
    if not stanzas:
        return None
    result = {"name": None, "link": None, "status": None, "value": None, "best": None, "alternatives": []}
    for index, stanza in enumerate(stanzas):
        fields = {}
        slaves = {}
        in_slaves = False
        for line in stanza.splitlines():
            if line.startswith(" ") and in_slaves:
                parts = line.strip().split(" ", 1)
                if len(parts) == 2:
                    slaves[parts[0]] = parts[1]
                continue
            key, _sep, value = line.partition(":")
            in_slaves = key == "Slaves"
            fields[key] = value.strip()
        if index == 0:
            result.update(
                name=fields.get("Name"),
                link=fields.get("Link"),
                status=fields.get("Status"),
                best=fields.get("Best") or None,
                value=None if fields.get("Value") in (None, "", "none") else fields.get("Value"),
            )
        elif "Alternative" in fields:
            priority = fields.get("Priority", "0")
            result["alternatives"].append(
                {
                    "path": fields["Alternative"],
                    "priority": int(priority) if priority.lstrip("-").isdigit() else priority,
                    "slaves": slaves,
                }
            )
    return result


def read_shim_version(libdir):
    """Reads __version__ from the installed package by regex: importing it would run its code as root."""
    try:
        with open(os.path.join(libdir, "sendmail_shim", "__init__.py"), encoding="utf-8") as handle:
            match = _VERSION_RE.search(handle.read())
    except (OSError, UnicodeDecodeError):
        return None
    return match.group(1) if match else None


def file_state(path):
    if not os.path.isfile(path):
        return {"exists": os.path.lexists(path), "sha1": None}
    digest = hashlib.sha1()  # noqa: S324 - the digest Ansible's own modules compare files with
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return {"exists": True, "sha1": digest.hexdigest()}


def unit_states(module, units):
    systemctl = module.get_bin_path("systemctl")
    states = {}
    for unit in units:
        if systemctl is None:
            states[unit] = {"enabled": "unknown", "active": "unknown"}
            continue
        # Both answer on stdout whatever their exit status (non-zero for "disabled", "inactive"...).
        _rc, enabled, _err = module.run_command([systemctl, "is-enabled", unit])
        _rc, active, _err = module.run_command([systemctl, "is-active", unit])
        states[unit] = {"enabled": enabled.strip() or "unknown", "active": active.strip() or "unknown"}
    return states


def gather(module):
    params = module.params
    dpkg_query = module.get_bin_path("dpkg-query")
    if dpkg_query is None:
        module.fail_json(
            msg="dpkg-query not found: this host is not of the Debian family, which is all it supports"
        )
    rc, out, err = module.run_command([dpkg_query, "-W", "-f", _DPKG_FORMAT])
    if rc != 0:
        module.fail_json(msg="dpkg-query -W failed", rc=rc, stderr=err)
    packages = parse_dpkg_list(out)
    dpkg = module.get_bin_path("dpkg", required=True)
    rc, architecture, err = module.run_command([dpkg, "--print-architecture"])
    if rc != 0:
        module.fail_json(msg="dpkg --print-architecture failed", rc=rc, stderr=err)

    def public(pkg):
        return {k: pkg[k] for k in ("name", "version", "status")}

    mta_packages = [
        public(p)
        for p in sorted(packages.values(), key=lambda p: p["name"])
        if p["status"] != "config-files" and "mail-transport-agent" in p["provides"]
    ]
    known = [public(packages[n]) for n in sorted(set(params["known_mta_packages"])) if n in packages]

    path = params["sendmail_path"]
    sendmail = {
        "path": path,
        "exists": os.path.exists(path),
        "is_link": os.path.islink(path),
        "resolved": os.path.realpath(path) if os.path.exists(path) else None,
        "package": None,
        "alternative": None,
    }
    rc, out, _err = module.run_command([dpkg_query, "-S", path])
    if rc == 0:
        sendmail["package"] = parse_dpkg_search(out)
    update_alternatives = module.get_bin_path("update-alternatives")
    if update_alternatives:
        rc, out, _err = module.run_command([update_alternatives, "--query", params["alternative_name"]])
        if rc == 0:
            sendmail["alternative"] = parse_alternatives_query(out)

    return {
        "mta_packages": mta_packages,
        "known_mta_packages": known,
        "sendmail": sendmail,
        "packages": {
            name: packages[name]["version"]
            if name in packages and packages[name]["status"] == "installed"
            else None
            for name in params["packages"]
        },
        "files": {path: file_state(path) for path in params["files"]},
        "units": unit_states(module, params["units"]),
        "systemd_booted": os.path.isdir(module.params["systemd_runtime_dir"]),
        "architecture": architecture.strip(),
        "shim_version": read_shim_version(params["shim_libdir"]),
    }


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    # Stable, parseable output whatever the controller's locale.
    module.run_command_environ_update = {"LC_ALL": "C"}
    facts = gather(module)
    module.exit_json(changed=False, ansible_facts={"mta_facts": facts}, **facts)


if __name__ == "__main__":
    main()
