# SPDX-License-Identifier: MIT
"""Stands in for the get-pip.py that `ansible-test --venv` downloads from a host this machine cannot reach.

ansible-test runs it inside a new virtualenv with pip's install arguments, as it runs get-pip.py. It
bootstraps pip from the interpreter's own ensurepip, then lets that pip install what was asked (pip itself
at ansible-test's pinned version) from the package index pip is configured for.
"""

import ensurepip
import subprocess
import sys

# get-pip.py's own switches: ensurepip installs neither setuptools nor wheel unless asked.
OWN_SWITCHES = {"--no-setuptools", "--no-wheel"}

ensurepip.bootstrap()
args = [a for a in sys.argv[1:] if a not in OWN_SWITCHES]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
