"""Shared test setup: make the talent example importable as the `talent` package."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TALENT_DIR = ROOT / "examples" / "talent"
if str(TALENT_DIR) not in sys.path:
    sys.path.insert(0, str(TALENT_DIR))
