# SPDX-License-Identifier: MIT
"""The bench's tools are scripts in bench/, not a package: their tests import them from there."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
