"""Integration tests start real parties; make the harness (and the unit tests' codec strategies) importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parents[1] / "unit"))
