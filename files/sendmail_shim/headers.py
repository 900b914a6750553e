# SPDX-License-Identifier: MIT
"""Just enough RFC 5322 for the record: the header block, addresses, dates, RFC 2047 words.

Hand-written because the email package costs more start-up time than the whole rest of the shim.
"""

import binascii

# Codecs that Python can look up by a charset name but that are not mail charsets: they turn escape
# sequences or IDNA labels into text, and may produce lone surrogates that no UTF-8 record can hold.
# (The transform codecs, base64, zlib, rot13 and friends, are no text encodings at all.)
_NOT_CHARSETS = frozenset(("unicode_escape", "raw_unicode_escape", "punycode", "idna", "undefined"))

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_ZONES = {"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7}
_ZONES.update({"MDT": -6, "PST": -8, "PDT": -7})


def _is_field_name(name):
    return bool(name) and all(32 < c < 127 for c in name)


def _lines(data, pos):
    """(line, next position) from `pos` on; a line ends at LF, CRLF or a bare CR (old Mac files)."""
    size = len(data)
    next_cr = -1
    while pos < size:
        nl = data.find(b"\n", pos)
        if next_cr < pos:
            # Remembered between lines: searching again from every line would be quadratic without CRs.
            next_cr = data.find(b"\r", pos)
            if next_cr < 0:
                next_cr = size
        end = size if nl < 0 else nl
        if next_cr < end:
            end = next_cr
            step = 2 if data[end + 1 : end + 2] == b"\n" else 1
        else:
            step = 1
        yield data[pos:end], end + step
        pos = end + step


def parse_block(data):
    """[(lower-case name, unfolded value)] of the header block at the start of `data`.

    The block ends at the first empty line or at the first line that is neither a field nor a
    continuation (a message without headers has none). A leading mbox "From " line is skipped. There is
    no limit on the number or the length of fields: the record's line cap decides what is kept of them.
    """
    fields = []
    pos = 0
    if data.startswith(b"From "):
        pos = next(_lines(data, 0))[1]
    for line, _next in _lines(data, pos):
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if not fields:
                break
            fields[-1][1].append(line)
            continue
        colon = line.find(b":")
        if colon <= 0 or not _is_field_name(line[:colon].rstrip()):
            break
        fields.append((line[:colon].rstrip().decode("ascii").lower(), [line[colon + 1 :]]))
    return [(name, _text(b"".join(parts))) for name, parts in fields]


def _text(raw):
    # RFC 6532 allows UTF-8 in headers; anything else becomes U+FFFD rather than failing.
    return raw.decode("utf-8", "replace").strip()


_encoded_word = None


def decode_words(value):
    """Decode RFC 2047 encoded-words; whitespace between two adjacent encoded-words is dropped."""
    if "=?" not in value:
        return value
    global _encoded_word  # noqa: PLW0603 - compiled on first use: most messages never need re
    if _encoded_word is None:
        import re  # noqa: PLC0415

        _encoded_word = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
    out = []
    pending = []  # (charset, bytes) of adjacent words, decoded together: a character may span two
    pos = 0
    for match in _encoded_word.finditer(value):
        gap = value[pos : match.start()]
        if gap and (not pending or gap.strip()):
            _flush(pending, out)
            out.append(gap)
        charset, kind, text = match.groups()
        charset = charset.partition("*")[0].lower()
        try:
            if kind in "bB":
                body = text.rstrip("=").replace("+", "").replace("/", "")
                if body and not (body.isascii() and body.isalnum()):
                    # a2b_base64 would silently skip the stray characters (strict_mode is 3.11+).
                    raise ValueError("not base64")
                raw = binascii.a2b_base64(text + "=" * (-len(text) % 4))
            else:
                raw = binascii.a2b_qp(text.encode("ascii"), header=True)
        except (binascii.Error, ValueError):
            _flush(pending, out)
            out.append(match.group(0))
        else:
            if pending and pending[-1][0] == charset:
                pending[-1] = (charset, pending[-1][1] + raw, pending[-1][2] + match.group(0))
            else:
                pending.append((charset, raw, match.group(0)))
        pos = match.end()
    _flush(pending, out)
    out.append(value[pos:])
    return "".join(out)


def _text_codec(charset):
    """Whether `charset` names a codec that turns bytes into text: a mail charset, not a transform."""
    import codecs  # noqa: PLC0415 - loaded already by the interpreter; imported where it is used

    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):
        return False
    return getattr(info, "_is_text_encoding", True) and info.name.replace("-", "_") not in _NOT_CHARSETS


def _flush(pending, out):
    """Decode the pending words; a word whose charset is no text charset, or whose text would not be
    valid Unicode (lone surrogates), stays as it was written."""
    for charset, raw, written in pending:
        text = None
        if _text_codec(charset):
            try:
                text = raw.decode(charset, "replace")
                text.encode("utf-8")
            except (LookupError, UnicodeError, ValueError, TypeError):
                text = None
        out.append(written if text is None else text)
    pending.clear()


def _skip_comment(value, i):
    """Index just past the (possibly nested) comment opening at value[i]."""
    depth = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == "\\":
            i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _split_top(value):
    """Split an address list on top-level commas, dropping comments; group names and ";" go too."""
    items = []
    current = []
    i = 0
    n = len(value)
    in_angle = False
    while i < n:
        c = value[i]
        if c == '"':
            j = i + 1
            while j < n and value[j] != '"':
                j += 2 if value[j] == "\\" else 1
            current.append(value[i : j + 1])
            i = j + 1
            continue
        if c == "(":
            i = _skip_comment(value, i)
            current.append(" ")
            continue
        if c == "[":
            # A domain literal: "[IPv6:2001:db8::1]" holds colons that are not a group's.
            j = value.find("]", i)
            j = n - 1 if j < 0 else j
            current.append(value[i : j + 1])
            i = j + 1
            continue
        if c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif not in_angle and c == ",":
            items.append("".join(current))
            current = []
            i += 1
            continue
        elif not in_angle and c == ":":
            # "group: a@b, c@d;" - the display name of a group is not an address.
            current = []
            i += 1
            continue
        elif not in_angle and c == ";":
            items.append("".join(current))
            current = []
            i += 1
            continue
        current.append(c)
        i += 1
    items.append("".join(current))
    return items


def parse_addresses(value):
    """The addr-specs of an address list: 'A <a@x>, "B, C" <b@y>, c@z (C)' -> ['a@x', 'b@y', 'c@z']."""
    found = []
    for item in _split_top(value):
        start = item.rfind("<")
        if start >= 0:
            end = item.find(">", start)
            addr = item[start + 1 : end if end >= 0 else len(item)]
            # An obsolete source route "@a,@b:user@host" names relays, not the mailbox.
            if addr.startswith("@") and ":" in addr:
                addr = addr.partition(":")[2]
        else:
            addr = item
        addr = addr.strip()
        if addr:
            found.append(addr)
    return found


def _days_in_month(year, month):
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_date(value):
    """RFC 5322 date-time (with the obsolete forms) as RFC 3339 keeping the writer's offset, or None."""
    words = value.replace(",", " ").split()
    if words and words[0][:1].isalpha() and words[0][:3].lower() not in _MONTHS:
        words = words[1:]  # day of week
    if len(words) < 4:
        return None
    day, month, year, clock = words[:4]
    zone = words[4] if len(words) > 4 else "-0000"
    if day[:3].lower() in _MONTHS:  # "Nov 25 2025" order, seen in the wild
        day, month = month, day
    month_number = _MONTHS.get(month[:3].lower())
    parts = clock.split(":")
    if not month_number or not all(p.isascii() and p.isdigit() for p in [day, year, *parts]):
        return None
    if len(parts) == 2:
        parts.append("0")
    if len(parts) != 3:
        return None
    y = int(year)
    if len(year) == 2:
        y += 2000 if y < 50 else 1900
    elif len(year) == 3:
        y += 1900
    d, hh, mm, ss = int(day), int(parts[0]), int(parts[1]), int(parts[2])
    if not (1 <= d <= _days_in_month(y, month_number) and hh < 24 and mm < 60 and ss <= 60):
        return None
    if not 1000 <= y <= 9999:
        return None
    if zone[:1] in "+-" and len(zone) == 5 and zone[1:].isascii() and zone[1:].isdigit():
        # Offsets in use on Earth run from -12:00 to +14:00; anything else is no time a date field holds.
        minutes = int(zone[1:3]) * 60 + int(zone[3:5])
        if int(zone[3:5]) >= 60 or minutes > (14 * 60 if zone[0] == "+" else 12 * 60):
            return None
        offset = f"{zone[0]}{zone[1:3]}:{zone[3:5]}"
    elif zone.upper() in _ZONES:
        hours = _ZONES[zone.upper()]
        offset = f"{'-' if hours < 0 else '+'}{abs(hours):02d}:00"
    else:
        offset = "+00:00"  # RFC 5322: an unknown zone is to be taken as UTC
    if offset in ("-00:00", "+00:00"):
        offset = "Z"
    return f"{y:04d}-{month_number:02d}-{d:02d}T{hh:02d}:{mm:02d}:{min(ss, 59):02d}{offset}"


class Headers:
    """The fields of one header block, looked up by lower-case name."""

    def __init__(self, fields):
        self._by_name = {}
        for name, value in fields:
            self._by_name.setdefault(name, []).append(value)

    def first(self, name):
        values = self._by_name.get(name)
        return values[0] if values else None

    def text(self, name):
        """First value of `name`, RFC 2047 decoded, or None."""
        value = self.first(name)
        if value is None:
            return None
        return decode_words(value)

    def addresses(self, *names):
        found = []
        for name in names:
            for value in self._by_name.get(name, ()):
                found.extend(parse_addresses(value))
        return found

    def date(self):
        """The Date field as RFC 3339, or None when absent or unreadable."""
        value = self.first("date")
        return parse_date(value) if value is not None else None

    def recipients(self):
        """The -t recipients: Resent-To/Cc/Bcc when the message has any Resent- recipient field
        (it is being re-sent to those), else To, Cc and Bcc. The rule of Postfix's sendmail -t."""
        resent = ("resent-to", "resent-cc", "resent-bcc")
        if any(name in self._by_name for name in resent):
            return self.addresses(*resent)
        return self.addresses("to", "cc", "bcc")


def parse(data):
    return Headers(parse_block(data))
