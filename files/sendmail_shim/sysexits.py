# SPDX-License-Identifier: MIT
"""Exit statuses, as sysexits.h numbers them: the one home of those the shim, the recorder and the config
check return. docs/design.md says when each is given."""

# SPDX-License-Identifier: MIT

EX_OK = 0
# Only where sendmail itself refuses: never for unknown options.
EX_USAGE = 64
# The recorder could not listen (the launcher's 71 is compiled into it: files/launcher).
EX_OSERR = 71
# Kept in the fallback, not in the log.
EX_TEMPFAIL = 75
# `python3 -m sendmail_shim.config` found a bad file.
EX_CONFIG = 78
