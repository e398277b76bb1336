"""Parsers and judgements of the verify role, in Python instead of Jinja.

The role asks each host with plain commands (`systemctl show`, `ss`, `redis-cli`) and turns their output
into rows of its report. What those outputs mean is decided here and in roles/grimbots's Redis parsers
(grimbots_redis_info, grimbots_redis_cluster_nodes), where `make test-unit` tests it
(tests/test_verify_filters.py); the tasks only call the filters and assemble rows.
"""

from __future__ import annotations

import re

_UNREACHABLE_FLAGS = {"fail", "fail?", "noaddr", "handshake"}


def systemctl_show(stdout: str) -> dict[str, dict[str, str]]:
    """`systemctl show -p ... unit...`: one block of Key=Value lines per unit, blank line between; keyed by
    the unit's Id. A unit without a unit file comes back with LoadState=not-found."""
    units: dict[str, dict[str, str]] = {}
    for block in (stdout or "").split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            units[props["Id"]] = props
    return units


def ss_listening(lines: list[str]) -> dict[str, list[str]]:
    """`ss --no-header --listening --tcp --numeric`: port (a string) to the local addresses bound to it,
    IPv6 brackets and %interface scopes removed (`[::]:6379` is `::`, `127.0.0.1%lo:53` is 127.0.0.1)."""
    ports: dict[str, list[str]] = {}
    for line in lines or []:
        fields = line.split()
        if len(fields) < 4 or ":" not in fields[3]:
            continue
        address, port = fields[3].rsplit(":", 1)
        address = re.sub(r"%.*$", "", address).replace("[", "").replace("]", "")
        ports.setdefault(port, []).append(address)
    return ports


def cluster_problems(nodes: list[dict]) -> list[str]:
    """What is wrong with the cluster a node sees (nodes parsed by grimbots_redis_cluster_nodes): a node
    not connected or flagged failing, a replica on the same host as its primary, a primary with slots and
    no replica. Empty when healthy."""
    problems = []
    by_id = {node["id"]: node for node in nodes}
    for node in nodes:
        if _UNREACHABLE_FLAGS.intersection(node["flags"]) or node["link"] != "connected":
            problems.append(f"{node['endpoint']} unreachable ({','.join(node['flags'])}, {node['link']})")
        if "slave" in node["flags"]:
            primary = by_id.get(node["primary_id"], {"address": "?", "endpoint": "?"})
            if primary["address"] == node["address"]:
                problems.append(
                    f"replica {node['endpoint']} on the host of its primary {primary['endpoint']}"
                )
        if (
            "master" in node["flags"]
            and node["slots"]
            and not any(n["primary_id"] == node["id"] for n in nodes)
        ):
            problems.append(f"primary {node['endpoint']} has no replica")
    return problems


def duration_text(seconds: int) -> str:
    """A unit's uptime for a person: seconds under 2 min, then minutes, hours, days."""
    seconds = max(int(seconds), 0)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def unit_verdict(unit: dict | None, now: int, flapping_restarts: int, flapping_window: int) -> dict:
    """Judge one unit from its `systemctl show --timestamp=unix` properties: not installed, not active,
    flapping (restarted more than flapping_restarts times and up for less than flapping_window seconds),
    else ok. Returns {'result': 'ok'|'FAIL', 'detail': ...}."""
    unit = unit or {}
    restarts = int(unit.get("NRestarts") or 0)
    since = (unit.get("ActiveEnterTimestamp") or "").lstrip("@")
    age = max(int(now) - int(since), 0) if since.isdigit() else 0
    restart_text = f", restarted {restarts} times by systemd" if restarts > 0 else ""
    if unit.get("LoadState", "not-found") == "not-found":
        return {"result": "FAIL", "detail": "not installed (no unit file)"}
    if unit.get("ActiveState") != "active":
        result = unit.get("Result") or "success"
        result_text = f", result {result}" if result != "success" else ""
        state = f"{unit.get('ActiveState') or '?'} ({unit.get('SubState') or '?'}{result_text})"
        return {"result": "FAIL", "detail": state + restart_text}
    if restarts > int(flapping_restarts) and age < int(flapping_window):
        return {
            "result": "FAIL",
            "detail": f"flapping: restarted {restarts} times by systemd, up only {duration_text(age)} "
            "since the last one",
        }
    return {
        "result": "ok",
        "detail": f"active ({unit.get('SubState') or '?'}) for {duration_text(age)}{restart_text}",
    }


class FilterModule:
    def filters(self):
        return {
            "verify_systemctl_show": systemctl_show,
            "verify_ss_listening": ss_listening,
            "verify_cluster_problems": cluster_problems,
            "verify_duration_text": duration_text,
            "verify_unit_verdict": unit_verdict,
        }
