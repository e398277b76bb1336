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


def answer_text(result: dict | None, limit: int = 200) -> str:
    """What a command said when it did not answer as expected: its stdout, stderr and Ansible's msg on one
    line, cut to `limit` characters, for the detail of a FAIL row."""
    result = result or {}
    text = " ".join(str(result.get(key) or "").strip() for key in ("stdout", "stderr", "msg"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redis_ping_row(result: dict | None, info: dict, port) -> dict:
    """The row of Redis on `port` from its answer to `PING` then `INFO replication` (`result`, a command
    result) and that answer parsed by grimbots_redis_info (`info`): PONG and a primary, or PONG and a
    replica whose link is up."""
    result = result or {}
    row = {"tier": "redis", "check": f"redis :{port} PING"}
    first = ((result.get("stdout_lines") or [""])[0] or "").strip()
    role = info.get("role", "")
    if first != "PONG":
        return {**row, "result": "FAIL", "detail": "no PONG: " + answer_text(result)}
    if role == "master":
        replicas = info.get("connected_slaves", "?")
        return {**row, "result": "ok", "detail": f"PONG, primary with {replicas} replicas"}
    if role == "slave":
        link = info.get("master_link_status", "?")
        primary = f"{info.get('master_host', '?')}:{info.get('master_port', '?')}"
        return {
            **row,
            "result": "ok" if link == "up" else "FAIL",
            "detail": f"PONG, replica of {primary}, link {link}",
        }
    return {**row, "result": "FAIL", "detail": "PONG, but INFO replication did not answer"}


def cluster_rows(
    results: list[dict], ports: list, infos: list[dict], views: list[list[dict]], slots, missing: str
) -> list[dict]:
    """The rows of the Redis Cluster on one host. `results[i]` is the answer of the local instance on
    `ports[i]` to `CLUSTER INFO` then `CLUSTER NODES`, `infos[i]` and `views[i]` that answer parsed by
    grimbots_redis_info and grimbots_redis_cluster_nodes. One row per instance (cluster_state ok and
    every one of `slots` assigned), then one for the cluster's shape as the first instance sees it
    (cluster_problems). With no local instance at all, one FAIL row whose detail is `missing`."""
    if not ports:
        return [{"tier": "redis", "check": "redis cluster", "result": "FAIL", "detail": missing}]
    rows = []
    for port, result, info, nodes in zip(ports, results, infos, views, strict=True):
        check = f"redis cluster :{port}"
        if "cluster_state" not in info:
            rows.append(
                {
                    "tier": "redis",
                    "check": check,
                    "result": "FAIL",
                    "detail": "no answer: " + answer_text(result),
                }
            )
            continue
        myself = next((node for node in nodes if "myself" in node["flags"]), {"flags": []})
        kind = "primary" if "master" in myself["flags"] else "replica" if "slave" in myself["flags"] else "?"
        assigned = info.get("cluster_slots_assigned", "?")
        good = info["cluster_state"] == "ok" and assigned == str(slots)
        rows.append(
            {
                "tier": "redis",
                "check": check,
                "result": "ok" if good else "FAIL",
                "detail": f"cluster_state:{info['cluster_state']}, {assigned}/{slots} slots assigned, "
                f"{kind}, {info.get('cluster_known_nodes', '?')} nodes known",
            }
        )
    nodes, seen_from = views[0], ports[0]
    problems = cluster_problems(nodes)
    if not nodes:
        detail = f"no CLUSTER NODES answer from :{seen_from}"
    else:
        primaries = sum(1 for node in nodes if "master" in node["flags"] and node["slots"])
        replicas = sum(1 for node in nodes if "slave" in node["flags"])
        detail = f"{primaries} primaries, {replicas} replicas, seen from :{seen_from}"
        if not problems:
            detail += ", every replica on another host than its primary"
    rows.append(
        {
            "tier": "redis",
            "check": "redis cluster nodes",
            "result": "FAIL" if problems or not nodes else "ok",
            "detail": "; ".join([*problems, detail]),
        }
    )
    return rows


def sentinel_primary(lookup: dict | None) -> str:
    """The primary a Sentinel names ('ip:port') from its answer to `SENTINEL get-master-addr-by-name`
    (a command result: two lines, address then port); empty when it names none or did not answer."""
    lookup = lookup or {}
    lines = [line.strip() for line in lookup.get("stdout_lines") or []]
    return ":".join(lines) if lookup.get("rc", 1) == 0 and len(lines) == 2 and all(lines) else ""


def sentinel_row(primary: str, lookup: dict | None, quorum: dict | None, peers: dict, name: str) -> dict:
    """The row of a Sentinel: it names a primary for `name` (`primary`, 'ip:port', from the answer
    `lookup` to get-master-addr-by-name; empty when it named none), the same one as every other
    Sentinel that named one (`peers`: host -> the primary its Sentinel names), and CKQUORUM (`quorum`)
    answered OK."""
    problems = []
    if not primary:
        problems.append(f"names no primary for {name}: " + answer_text(lookup))
    named = {host: other for host, other in (peers or {}).items() if other}
    problems += [f"{host}'s Sentinel names {other}" for host, other in named.items() if other != primary]
    quorum = quorum or {}
    if not re.match(r"^[+]?OK", str(quorum.get("stdout") or "")):
        problems.append(
            "CKQUORUM: " + answer_text({"stdout": quorum.get("stdout"), "stderr": quorum.get("stderr")})
        )
    agreeing = sum(1 for other in named.values() if other == primary) + (1 if primary else 0)
    detail = f"primary {primary or '?'}, named by {agreeing} Sentinels" + (
        "" if problems else ", CKQUORUM OK"
    )
    return {
        "tier": "redis",
        "check": f"sentinel {name}",
        "result": "FAIL" if problems else "ok",
        "detail": "; ".join([*problems, detail]),
    }


class FilterModule:
    def filters(self):
        return {
            "verify_systemctl_show": systemctl_show,
            "verify_ss_listening": ss_listening,
            "verify_cluster_problems": cluster_problems,
            "verify_duration_text": duration_text,
            "verify_unit_verdict": unit_verdict,
            "verify_answer_text": answer_text,
            "verify_redis_ping_row": redis_ping_row,
            "verify_cluster_rows": cluster_rows,
            "verify_sentinel_primary": sentinel_primary,
            "verify_sentinel_row": sentinel_row,
        }
