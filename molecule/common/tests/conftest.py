"""Fixtures of the common scenario."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from podman_host import host  # noqa: F401
