# SPDX-License-Identifier: MIT
"""The kind of a message: its subject as a template, and a short stable id of (user, parent, template).

Two cron mails of one job differ in dates, pids and host names, never in the words: the template keeps
the words and puts a placeholder where the variable parts were, so one terms aggregation on the id
counts the mail per job. No `re` here: the shim computes the kind on the cron/sudo path, where
importing `re` would cost more than the whole template.
"""

from sendmail_shim.message import sha256

# Characters stripped from either end of a word before it is classified, and put back after.
_WRAPPERS = "()[]{}<>\"'`,;:!?*%"
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
MAX_TEMPLATE = 200
ID_LENGTH = 12
# Kinds already computed, for readers of many records (the report): the same cron subject comes back
# every day. Cleared when full, which bounds it without bookkeeping.
_KNOWN = {}
_KNOWN_MAX = 4096


def _all_in(text, chars):
    return bool(text) and all(c in chars for c in text)


def _digit_groups(text, separators):
    """Whether text is digit groups joined by any of separators, with at least two groups."""
    for sep in separators:
        text = text.replace(sep, " ")
    groups = text.split(" ")
    return len(groups) > 1 and all(_all_in(g, _DIGITS) for g in groups)


def _is_uuid(word):
    parts = word.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(_all_in(p, _HEX) for p in parts)


def _is_hex_id(word):
    if word[:2] in ("0x", "0X") and _all_in(word[2:], _HEX):
        return True
    # Eight hex digits or more with a digit among them: words such as "deadbeef" or "facade" stay.
    return len(word) >= 8 and _all_in(word, _HEX) and any(c in _DIGITS for c in word)


def _is_number(word):
    core = word.lstrip("+-")
    return _all_in(core.replace(".", "").replace(",", ""), _DIGITS) and core[:1] in _DIGITS


def _is_date(word):
    date, sep, time = word.partition("T")
    if sep and not _is_time(time.rstrip("Z").split("+")[0]):
        return False
    return _digit_groups(date, "-/") and len(date.replace("-", "").replace("/", "")) >= 6


def _is_time(word):
    return _digit_groups(word.split(".")[0], ":")


def _is_host(word):
    labels = word.rstrip(".").split(".")
    return (
        len(labels) > 1
        and all(_all_in(label, _HOST_CHARS) for label in labels)
        and labels[-1].isalpha()
        and len(labels[-1]) >= 2
    )


def _placeholder(word, hostnames):
    if word in hostnames:
        return "<host>"
    if "@" in word.strip("@"):
        return "<addr>"
    if word.startswith(("/", "~/", "./", "../")):
        return "<path>"
    if _is_uuid(word):
        return "<uuid>"
    if _is_date(word):
        return "<date>"
    if _is_time(word):
        return "<time>"
    if _digit_groups(word, ".") and word.count(".") == 3:
        return "<ip>"
    if _is_number(word):
        return "<n>"
    if _is_hex_id(word):
        return "<hex>"
    if _is_host(word):
        return "<host>"
    return None


def _compound_template(word, hostnames):
    """`job-20261129`, `probe-3f2a9c81d0e4-root`: the parts between - and _ classified one by one."""
    parts = word.replace("_", "-_-").split("-")
    replaced = [(_placeholder(part, hostnames) if part not in ("", "_") else None) or part for part in parts]
    if replaced == parts:
        return None
    return "-".join(replaced).replace("-_-", "_")


def _word_template(word, hostnames):
    start = len(word) - len(word.lstrip(_WRAPPERS))
    end = len(word.rstrip(_WRAPPERS))
    core = word[start:end]
    if not core:
        return word
    replaced = _placeholder(core, hostnames)
    if replaced is None and ("-" in core or "_" in core):
        replaced = _compound_template(core, hostnames)
    if replaced is None and "=" in core:
        # key=value: the key is a word, the value is classified alone.
        key, _, value = core.partition("=")
        value_placeholder = _placeholder(value, hostnames) if value else None
        replaced = f"{key}={value_placeholder}" if value_placeholder else None
    return word[:start] + (replaced or core) + word[end:]


def template(subject, hostname=None):
    """`subject` with its variable parts replaced by placeholders and its blanks collapsed.

    `hostname` (the record's host, and its first label) counts as a host name even without a dot.
    """
    hostnames = set()
    if hostname:
        hostnames = {hostname, hostname.split(".")[0]}
    words = (subject or "").split()
    return " ".join(_word_template(word, hostnames) for word in words)[:MAX_TEMPLATE]


def kind_id(user, parent, subject_template):
    """Short stable id of (user, parent process name, template): the same inputs give the same id."""
    key = "\0".join((user or "", parent or "", subject_template))
    return sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:ID_LENGTH]


def of(user, parent, subject, hostname=None):
    """The record's `kind` object."""
    key = (user, parent, subject, hostname)
    known = _KNOWN.get(key)
    if known is None:
        if len(_KNOWN) >= _KNOWN_MAX:
            _KNOWN.clear()
        subject_template = template(subject, hostname)
        known = _KNOWN[key] = (kind_id(user, parent, subject_template), subject_template)
    return {"id": known[0], "template": known[1]}
