# SPDX-License-Identifier: MIT
"""systemd unit files read as systemd reads them: sections of `Key=value` lines, keys that may repeat."""

from __future__ import annotations


def parse(text: str) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [value, ...]}}, in file order; comments and blank lines dropped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"a setting before any section: {line}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def single(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    """The one value of key: a setting given twice would be a surprise to the reader."""
    values = unit[section][key]
    assert len(values) == 1, f"[{section}] {key} set {len(values)} times"
    return values[0]
