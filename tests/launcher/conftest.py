"""The launcher tests' helper module (``recorded_cluster``) imports by plain name."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
