# SPDX-License-Identifier: MIT
"""newest_deb: the newest of some .deb files by Debian version order (dpkg --compare-versions), and
deb_version, deb_architecture: read from their names (NAME_VERSION_ARCH.deb, the epoch omitted as
dpkg-buildpackage names them)."""

import functools
import os
import urllib.parse

from ansible.errors import AnsibleFilterError


def _order(char):
    # dpkg's lib/dpkg/version.c: "~" sorts before everything, even the end of the string; letters before
    # other characters.
    if char == "~":
        return -1
    if char.isascii() and char.isalpha():
        return ord(char)
    return ord(char) + 256


def _is_digit(text, index):
    return index < len(text) and text[index] in "0123456789"


def _compare_part(a, b):
    """dpkg's verrevcmp: alternating non-digit and digit runs."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not _is_digit(a, i)) or (j < len(b) and not _is_digit(b, j)):
            ac = _order(a[i]) if i < len(a) and not _is_digit(a, i) else 0
            bc = _order(b[j]) if j < len(b) and not _is_digit(b, j) else 0
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first_diff = 0
        while _is_digit(a, i) and _is_digit(b, j):
            first_diff = first_diff or ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if _is_digit(a, i):
            return 1
        if _is_digit(b, j):
            return -1
        if first_diff:
            return first_diff
    return 0


def _split(version):
    epoch, _colon, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _dash, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0), upstream, revision


def compare_versions(a, b):
    """Negative, zero or positive as Debian version a sorts before, with or after b."""
    (ea, ua, ra), (eb, ub, rb) = _split(a), _split(b)
    return (ea > eb) - (ea < eb) or _compare_part(ua, ub) or _compare_part(ra, rb)


def _name_parts(path):
    name = os.path.basename(path)
    parts = name[: -len(".deb")].split("_") if name.endswith(".deb") else []
    if len(parts) != 3:
        raise AnsibleFilterError(f"{path} is not named PACKAGE_VERSION_ARCH.deb")
    return parts


def deb_version(path):
    return urllib.parse.unquote(_name_parts(path)[1])


def deb_architecture(path):
    return _name_parts(path)[2]


def newest_deb(paths):
    """The path of the newest .deb, or "" for an empty list."""
    if not paths:
        return ""
    key = functools.cmp_to_key(lambda a, b: compare_versions(deb_version(a), deb_version(b)))
    return max(paths, key=key)


class FilterModule:
    def filters(self):
        return {"newest_deb": newest_deb, "deb_version": deb_version, "deb_architecture": deb_architecture}
