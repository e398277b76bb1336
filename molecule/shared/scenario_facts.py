"""What every scenario's tests read the same way: the scenario's variables (its molecule.yml), a
container's address on the scenario network, the figures a drill measured, and the app's row counts.

A scenario's tests/conftest.py imports it after putting molecule/shared on sys.path:

    from scenario_facts import FigureLog, address, app_db_counts, scenario_vars
"""

import json
from pathlib import Path

import yaml


def scenario_vars(scenario: Path, group: str = "all") -> dict:
    """The group_vars of `group` in the scenario's molecule.yml (lab-only secrets included)."""
    config = yaml.safe_load((scenario / "molecule.yml").read_text())
    return config["provisioner"]["inventory"]["group_vars"][group]


def address(host) -> str:
    """The container's IPv4 address on the scenario network."""
    route = host.check_output("ip -4 -o route get 1.1.1.1").split()
    return route[route.index("src") + 1]


class FigureLog(list):
    """Figures measured by a scenario's drills, printed in their own section at the end of the run
    (a conftest calls `report` from pytest_terminal_summary)."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title

    def report(self, terminalreporter) -> None:
        if self:
            terminalreporter.section(self.title)
            for line in self:
                terminalreporter.write_line(line)


_COUNT_IN_APP_DB = (
    "import json; from sqlalchemy import func, select; from grimbots.settings import Settings; "
    "from grimbots.storage import TABLES_IN_ORDER, make_engine; "
    "engine = make_engine(Settings.from_env()); conn = engine.connect(); "
    "print(json.dumps({t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() "
    "for t in TABLES_IN_ORDER}))"
)


def app_db_counts(host) -> dict:
    """Rows per table of the app's database, read with the app's own settings on an app host."""
    out = host.check_output(
        "systemd-run --quiet --pipe --wait --collect -p User=grimbots "
        "-p EnvironmentFile=/etc/grimbots/grimbots.env /opt/grimbots/current/venv/bin/python -c %s",
        _COUNT_IN_APP_DB,
    )
    return json.loads(out)
