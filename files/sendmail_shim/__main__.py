# SPDX-License-Identifier: MIT
"""Entry point, for `python3 -m sendmail_shim` and for the launcher's `python3 -I -S .../__main__.py`."""

import os.path
import sys

if not __package__:
    # Run by path (the launcher, under -I -S): nothing put the package's parent directory on sys.path.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The entry stays tiny: a script run by path is compiled on every start, an imported module is not.
from sendmail_shim.app import main

sys.exit(main())
