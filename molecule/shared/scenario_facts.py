"""What every scenario's tests read the same way: the scenario's variables (its molecule.yml), a
container's address on the scenario network, redis-cli in a container, the figures a drill measured,
and the app's row counts.

A scenario's tests/conftest.py imports it after putting molecule/shared on sys.path:

    from scenario_facts import FigureLog, address, app_db_counts, redis_cli, scenario_vars, secret_values
"""

import json
import shlex
from pathlib import Path

import yaml


def scenario_vars(scenario: Path, group: str = "all") -> dict:
    """The group_vars of `group` in the scenario's molecule.yml (lab-only secrets included), or, for a
    scenario that links the lab's group_vars (site, phase3), every variable of the lab's group."""
    config = yaml.safe_load((scenario / "molecule.yml").read_text())
    inventory = config["provisioner"]["inventory"]
    if "links" in inventory:
        return lab_group_vars(scenario / inventory["links"]["group_vars"])
    return inventory["group_vars"][group]


def lab_group_vars(group_vars: Path) -> dict:
    """Every variable of the lab group's files under `group_vars` (inventories/lab/group_vars)."""
    merged = {}
    for path in sorted((group_vars / "lab").glob("*.yml")):
        merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def secret_values(variables: dict) -> list[str]:
    """Every value of the vault_* variables (nested ones too) long enough to be told apart in a run's
    output: what no output may contain."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif len(str(value)) >= 8:
            found.append(str(value))

    walk({name: value for name, value in variables.items() if name.startswith("vault_")})
    return found


def address(host) -> str:
    """The container's IPv4 address on the scenario network."""
    route = host.check_output("ip -4 -o route get 1.1.1.1").split()
    return route[route.index("src") + 1]


def redis_cli(
    host, *args: str, password: str | None = None, user: str | None = None, timeout: int = 10
) -> str:
    """Run redis-cli in a container (for at most `timeout` s); the password goes in REDISCLI_AUTH, not
    on the command line. Returns stdout and stderr, stripped."""
    env = f"REDISCLI_AUTH={shlex.quote(password)} " if password else ""
    opts = f"--user {shlex.quote(user)} " if user else ""
    quoted = " ".join(shlex.quote(a) for a in args)
    result = host.run(f"{env}timeout {timeout} redis-cli --no-auth-warning {opts}{quoted}")
    return (result.stdout + result.stderr).strip()


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
