# SPDX-License-Identifier: MIT
"""`sendmail-shim`, the administrator's command: `sendmail-shim report [...]`.

Runs from the installed package by path (`python3 -I -S .../sendmail_shim/admin.py report`, what the
installed wrapper does) or as `python3 -m sendmail_shim.admin` from a checkout.
"""

import os.path
import sys

if not __package__:
    # Run by path under -I -S: nothing put the package's parent directory on sys.path.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sendmail_shim.sysexits import EX_OK, EX_USAGE

COMMANDS = {"report": "mail volume by host, user, parent process and kind"}


def usage(out):
    out.write("usage: sendmail-shim COMMAND [options]\n\ncommands:\n")
    for name, what in COMMANDS.items():
        out.write(f"  {name:<8}{what}\n")
    out.write("\n`sendmail-shim COMMAND --help` describes a command.\n")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        usage(sys.stdout if argv else sys.stderr)
        return EX_OK if argv else EX_USAGE
    command, rest = argv[0], argv[1:]
    if command == "report":
        from sendmail_shim import report  # noqa: PLC0415 - one import per command

        return report.main(rest)
    sys.stderr.write(f"sendmail-shim: unknown command {command!r}\n")
    usage(sys.stderr)
    return EX_USAGE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
