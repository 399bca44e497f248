"""Puts this folder on ``sys.path``: the test modules import buildah.py by name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
