"""Parsers and judgements of the verify role, in Python instead of Jinja.

The role asks each host with plain commands (`systemctl show`, `ss`, `redis-cli`) and turns their output
into rows of its report. What those outputs mean is decided here and in roles/grimbots's Redis parsers
(grimbots_redis_info, grimbots_redis_cluster_nodes), where `make test-unit` tests it
(tests/test_verify_filters.py); the tasks only call the filters and assemble rows.
"""

from __future__ import annotations

import csv
import json
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
    text = " ".join(" ".join(str(result.get(key) or "") for key in ("stdout", "stderr", "msg")).split())
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


# What Ansible's uri module puts before the reason when nothing answered.
_NO_ANSWER_PREFIX = re.compile(r"^Status code was -1 and not \[[^]]*\]: Request failed: ")


def no_answer_text(response: dict | None, limit: int = 200) -> str:
    """Why a uri request got no answer ('<urlopen error [Errno 111] Connection refused>'), without the
    uri module's own preamble, cut to `limit` characters."""
    text = _NO_ANSWER_PREFIX.sub("", str((response or {}).get("msg") or ""))
    return answer_text({"msg": text}, limit)


def patroni_row(response: dict | None, hosts: list[str], max_lag) -> dict:
    """The row of the Patroni cluster from a member's `GET /cluster` (`response`, a uri result): exactly
    one leader, running; every other member streaming with a lag (bytes) under `max_lag`; one member per
    host of the postgres group (`hosts`)."""
    response = response or {}
    row = {"tier": "postgres", "check": "patroni cluster (GET /cluster)"}
    if response.get("status", -1) != 200:
        detail = f"no answer from {response.get('url', '')}: {no_answer_text(response)}"
        return {**row, "result": "FAIL", "detail": detail}
    members = (response.get("json") or {}).get("members") or []
    leader_roles = ("leader", "standby_leader")
    leaders = [member for member in members if member.get("role") in leader_roles]
    problems, parts = [], []
    if len(leaders) != 1:
        names = ", ".join(member.get("name", "?") for member in leaders)
        problems.append(f"{len(leaders)} leaders ({names}), expected 1")
    for member in members:
        name, state = member.get("name", "?"), member.get("state", "?")
        if member.get("role") in leader_roles:
            parts.append(f"{name} leader {state}")
            if state != "running":
                problems.append(f"leader {name} is {state}")
            continue
        lag = member.get("lag", "unknown")
        numeric = isinstance(lag, int | float) and not isinstance(lag, bool)
        parts.append(f"{name} {state} lag {lag}" + (" B" if numeric else ""))
        if state != "streaming":
            problems.append(f"{name} is {state}, not streaming")
        elif not numeric or lag >= int(max_lag):
            problems.append(f"{name} lags {lag} B (limit {max_lag} B)")
    found = [member.get("name") for member in members]
    missing = [host for host in hosts or [] if host not in found]
    if len(members) != len(hosts or []):
        problems.append(
            f"{len(members)} members for {len(hosts or [])} postgres hosts"
            + (f", missing {', '.join(missing)}" if missing else "")
        )
    detail = ", ".join(parts)
    if problems:
        detail = "; ".join(problems) + (f": {detail}" if parts else "")
    return {**row, "result": "FAIL" if problems else "ok", "detail": detail}


def etcd_rows(health: dict | None, listing: dict | None, expected: list[str], group: str) -> list[dict]:
    """The rows of an etcd member from `etcdctl endpoint health` (`health`) and `etcdctl member list
    --write-out=json` (`listing`), two command results: it is healthy, and the member list has as many
    members as the etcd group (`expected`, named `group`) has hosts."""
    health, listing = health or {}, listing or {}
    names = []
    if listing.get("rc", 1) == 0 and str(listing.get("stdout") or "").startswith("{"):
        try:
            names = [member.get("name", "?") for member in json.loads(listing["stdout"]).get("members") or []]
        except ValueError:
            names = []
    # etcdctl's JSON log lines (its retries) say nothing that its last lines do not.
    said = [
        *(health.get("stdout_lines") or []),
        *(health.get("stderr_lines") or []),
        str(health.get("msg") or ""),
    ]
    health_text = answer_text({"msg": " ".join(line for line in said if not line.startswith("{"))})
    if names:
        listed = ", ".join(sorted(names))
        members = f"{len(names)} members ({listed}) for the {len(expected)} hosts of group {group}"
    else:
        members = "no member list: " + answer_text(
            {"stderr": listing.get("stderr"), "msg": listing.get("msg")}
        )
    return [
        {
            "tier": "postgres",
            "check": "etcd endpoint health",
            "result": "ok" if health.get("rc", 1) == 0 else "FAIL",
            "detail": health_text,
        },
        {
            "tier": "postgres",
            "check": "etcd members",
            "result": "ok" if names and len(names) == len(expected) else "FAIL",
            "detail": members,
        },
    ]


def app_rows(response: dict | None, expected: list[dict]) -> list[dict]:
    """The rows of an app server from its `GET /health` (`response`, a uri result that accepted 200 and
    503): /health answered 200 'healthy' (each of its checks in the detail), and the RQ workers it counts
    per queue (registered by every app host in the shared queue Redis) are at least what the app hosts
    are expected to run (`expected`: one dict queue -> workers per app host, summed here)."""
    response = response or {}
    body = response.get("json") if isinstance(response.get("json"), dict) else {}
    checks = body.get("checks") or {}
    answered = response.get("status", -1) in (200, 503) and "status" in body
    if answered:
        parts = [
            f"{name} {check.get('status', '?')}" + (f": {check['error']}" if "error" in check else "")
            for name, check in checks.items()
        ]
        healthy = response["status"] == 200 and body["status"] == "healthy"
        health = {
            "result": "ok" if healthy else "FAIL",
            "detail": f"{response['status']} {body['status']} ({', '.join(parts)})",
        }
    else:
        detail = f"no answer from {response.get('url', '')}: {no_answer_text(response)}"
        health = {"result": "FAIL", "detail": detail}
    wanted: dict[str, int] = {}
    for host_workers in expected or []:
        for queue, count in (host_workers or {}).items():
            wanted[queue] = wanted.get(queue, 0) + int(count)
    rq = checks.get("rq_workers") or {}
    queues = rq.get("queues") or {}
    if queues:
        found = {queue: int((queues.get(queue) or {}).get("workers") or 0) for queue in wanted}
        short = [queue for queue, count in wanted.items() if found[queue] < count]
        counts = ", ".join(f"{queue} {found[queue]}/{count}" for queue, count in wanted.items())
        workers = {
            "result": "FAIL" if short else "ok",
            "detail": (f"too few workers on {', '.join(short)}: " if short else "")
            + f"{counts} (registered/expected on all app hosts)",
        }
    elif answered:
        error = f": {rq['error']}" if "error" in rq else ""
        workers = {"result": "FAIL", "detail": "/health reported no worker counts" + error}
    else:
        workers = {"result": "skipped", "detail": "not checked: /health did not answer (its own row fails)"}
    return [
        {"tier": "app", "check": "/health", **health},
        {"tier": "app", "check": "rq workers per queue", **workers},
    ]


def haproxy_stat(stdout: str | None) -> list[dict]:
    """HAProxy's `show stat` answer (CSV whose header line starts with '# ') as one dict per line; empty
    when the answer is not a stat table."""
    text = stdout or ""
    if not text.startswith("# "):
        return []
    lines = [line for line in text[2:].splitlines() if line.strip()]
    return list(csv.DictReader(lines))


def haproxy_rows(result: dict | None, backends: list[dict], socket_path: str) -> list[dict]:
    """One row per HAProxy backend from `show stat` read on the admin socket (`result`, a command
    result). `backends`: dicts of name, rule and expected (server names): rule 'all' wants every server
    UP and one per expected name, 'one' exactly one server UP (the read-write PostgreSQL backend), 'some'
    at least one UP (the read-only one)."""
    result = result or {}
    stats = haproxy_stat(result.get("stdout")) if result.get("rc", 1) == 0 else []
    answered = bool(stats)
    servers = [row for row in stats if row.get("svname") not in ("FRONTEND", "BACKEND")]
    rows = []
    for backend in backends:
        members = [row for row in servers if row.get("pxname") == backend["name"]]
        names = [row.get("svname") for row in members]
        up = [row.get("svname") for row in members if str(row.get("status", "")).startswith("UP")]
        states = ", ".join(f"{row.get('svname')} {row.get('status')}" for row in members)
        missing = [name for name in backend.get("expected") or [] if name not in names]
        rule = backend.get("rule", "all")
        if not answered:
            said = answer_text({"stderr": result.get("stderr"), "msg": result.get("msg")})
            problem = f"no answer from {socket_path}: {said}"
        elif not members:
            problem = f"no backend {backend['name']} or no server in it"
        elif rule == "all" and (len(up) != len(members) or missing):
            problem = "not every server UP" + (f", no server for {', '.join(missing)}" if missing else "")
        elif rule == "one" and len(up) != 1:
            problem = f"{len(up)} servers UP, expected exactly 1"
        elif rule == "some" and not up:
            problem = "no server UP"
        else:
            problem = ""
        detail = f"{problem}: {states}" if problem and states else problem or states
        rows.append(
            {
                "tier": "lb",
                "check": f"haproxy backend {backend['name']}",
                "result": "FAIL" if problem else "ok",
                "detail": detail,
            }
        )
    return rows


def unit_rows(
    units: dict,
    services: list[dict],
    expected: dict,
    service_units: dict,
    now,
    flapping_restarts,
    flapping_window,
    cluster_ports: list | None = None,
    worker_units: list | None = None,
    worker_instances: list | None = None,
    app_workers: dict | None = None,
) -> list[dict]:
    """One row per unit of each service the host must run (`services` whose `expected[name].expected`
    is true; their units in `service_units`, plus one `redis-server@cluster-<port>` per local cluster
    instance), judged by unit_verdict from `units` (systemctl_show). For the app, the RQ workers in one
    row: every enabled worker unit (`worker_units`) must be one of app_workers' instances
    (`worker_instances`) and judged ok."""
    rows = []
    for service in services:
        if not (expected.get(service["name"]) or {}).get("expected"):
            continue
        names = list(service_units.get(service["name"]) or [])
        if service["name"] == "redis_cluster":
            names += [f"redis-server@cluster-{port}.service" for port in cluster_ports or []]
        for name in names:
            verdict = unit_verdict(units.get(name), now, flapping_restarts, flapping_window)
            rows.append({"tier": service["tier"], "check": name, **verdict})
        if service["name"] != "app":
            continue
        instances = list(worker_instances or [])
        bad = []
        for name in worker_units or []:
            verdict = unit_verdict(units.get(name), now, flapping_restarts, flapping_window)
            if name not in instances:
                bad.append(f"{name}: enabled but not in app_workers")
            elif verdict["result"] != "ok":
                bad.append(f"{name}: {verdict['detail']}")
        per_queue = ", ".join(f"{queue} {count}" for queue, count in (app_workers or {}).items())
        rows.append(
            {
                "tier": "app",
                "check": "rq-worker@* units",
                "result": "FAIL" if bad else "ok",
                "detail": "; ".join(bad) if bad else f"{len(instances)} active, none flapping ({per_queue})",
            }
        )
    return rows


def port_rows(
    tiers: list[str],
    services: list[dict],
    expected: dict,
    ports: dict,
    listening: dict,
    cluster_ports: list | None = None,
) -> list[dict]:
    """One row per tier of the host: every port its expected services listen on (`ports`: service ->
    ports; a Redis Cluster instance also listens on its bus port, port + 10000) is in `listening`
    (ss_listening: port -> addresses)."""
    ports = dict(ports)
    ports["redis_cluster"] = [p for port in cluster_ports or [] for p in (int(port), int(port) + 10000)]
    rows = []
    for tier in tiers:
        wanted = [
            str(port)
            for service in services
            if service["tier"] == tier and (expected.get(service["name"]) or {}).get("expected")
            for port in ports.get(service["name"]) or []
        ]
        if not wanted:
            continue
        missing = [port for port in wanted if port not in (listening or {})]
        detail = (
            f"nothing listens on {', '.join(missing)}; " if missing else ""
        ) + f"expected {', '.join(wanted)}"
        rows.append(
            {
                "tier": tier,
                "check": "listening ports",
                "result": "FAIL" if missing else "ok",
                "detail": detail,
            }
        )
    return rows


class FilterModule:
    """The filters the role's tasks call; the helpers they build on (unit_verdict, cluster_problems,
    answer_text, haproxy_stat, ...) are tested directly."""

    def filters(self):
        return {
            "verify_systemctl_show": systemctl_show,
            "verify_ss_listening": ss_listening,
            "verify_redis_ping_row": redis_ping_row,
            "verify_cluster_rows": cluster_rows,
            "verify_sentinel_primary": sentinel_primary,
            "verify_sentinel_row": sentinel_row,
            "verify_no_answer_text": no_answer_text,
            "verify_patroni_row": patroni_row,
            "verify_etcd_rows": etcd_rows,
            "verify_app_rows": app_rows,
            "verify_haproxy_rows": haproxy_rows,
            "verify_unit_rows": unit_rows,
            "verify_port_rows": port_rows,
        }
