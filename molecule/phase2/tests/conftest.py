"""Shared facts of the scenario: the lab's variables (molecule.yml), the hosts, and the helpers of
molecule/shared/patroni_cluster.py that read the cluster's state through Patroni's REST API and run
SQL in the containers."""

import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from patroni_cluster import (  # noqa: F401  (the scenario's tests import these from conftest)
    PG_HOSTS,
    REST_PORT,
    cluster,
    leader_and_replicas,
    pg,
    psql,
    wait_for_healthy_cluster,
)
from scenario_facts import FigureLog, address, scenario_vars  # noqa: F401

# Figures measured by the drills, shown at the end of the run (pytest_terminal_summary).
FIGURES = FigureLog("phase 2 figures")


def pytest_terminal_summary(terminalreporter):
    FIGURES.report(terminalreporter)


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    return scenario_vars(SCENARIO)
