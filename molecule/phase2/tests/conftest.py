"""Fixtures of the phase2 scenario: its variables (molecule.yml), the postgres hosts, and the figures
the drills measured. The tests read the cluster with molecule/shared/patroni_cluster.py."""

import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from patroni_cluster import pg  # noqa: F401  (the fixture of the postgres hosts)
from scenario_facts import FigureLog, scenario_vars

# Figures measured by the drills, shown at the end of the run (pytest_terminal_summary).
FIGURES = FigureLog("phase 2 figures")


def pytest_terminal_summary(terminalreporter):
    FIGURES.report(terminalreporter)


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    return scenario_vars(SCENARIO)
