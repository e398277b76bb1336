"""Parsers of Redis answers, shared by every role (roles/grimbots is a dependency of each).

The redis role (forming, checking and restarting the cluster) and the verify role read the same
`CLUSTER NODES` and `INFO` output; one parser here means they cannot disagree on what a node is.
Tested by tests/test_verify_filters.py.
"""

from __future__ import annotations

import re

_INFO_LINE = re.compile(r"^([a-z_0-9]+):([^\r\n]*)", re.MULTILINE)
# id, ip:port@busport[,hostname], flags, primary id or '-', ping sent, pong received, config epoch,
# link state, then the slots the node serves.
_NODE_FIELDS = 8


def redis_info(stdout: str | None) -> dict[str, str]:
    """An `INFO` or `CLUSTER INFO` answer as a dict of its key:value lines. Section headers and other
    answers printed into the same output (PONG, CLUSTER NODES lines) are left out."""
    return {key: value.strip() for key, value in _INFO_LINE.findall(stdout or "")}


def redis_cluster_nodes(lines: list[str] | None) -> list[dict]:
    """`CLUSTER NODES` lines as dicts: id, address (the node's IP), port (int), endpoint (ip:port), flags
    (list), primary_id (its primary's id, '-' for a primary), link, slots (ranges it serves; the
    `[slot->-id]` migration markers are left out). Lines of other answers in the same output are
    skipped."""
    nodes = []
    for line in lines or []:
        fields = line.split()
        if len(fields) < _NODE_FIELDS or "@" not in fields[1]:
            continue
        endpoint = fields[1].split("@", 1)[0]
        address, _, port = endpoint.rpartition(":")
        if not port.isdigit():
            continue
        nodes.append(
            {
                "id": fields[0],
                "address": address,
                "port": int(port),
                "endpoint": endpoint,
                "flags": fields[2].split(","),
                "primary_id": fields[3],
                "link": fields[7],
                "slots": [slot for slot in fields[8:] if not slot.startswith("[")],
            }
        )
    return nodes


class FilterModule:
    def filters(self):
        return {
            "grimbots_redis_info": redis_info,
            "grimbots_redis_cluster_nodes": redis_cluster_nodes,
        }
