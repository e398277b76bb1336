"""Fixtures of the patroni scenario: its variables (molecule.yml) and the postgres hosts."""

import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from patroni_cluster import pg  # noqa: F401  (the fixture of the postgres hosts)
from scenario_facts import scenario_vars


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    return scenario_vars(SCENARIO)
