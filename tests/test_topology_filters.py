"""Unit tests of roles/grimbots's filters: service addresses, endpoints, the app's DSN and the
inventory's phase."""

import importlib.util
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1] / "roles/grimbots/filter_plugins/grimbots_topology.py"
spec = importlib.util.spec_from_file_location("grimbots_topology", PLUGIN)
topology = importlib.util.module_from_spec(spec)
spec.loader.exec_module(topology)


class Undefined:
    """Stands for Ansible's Undefined (what hostvars answer for a variable a host lacks)."""


def facts(address):
    return {"default_ipv4": {"address": address}}


HOSTVARS = {
    "pg1": {"ansible_facts": facts("192.0.2.11")},
    "pg2": {"ansible_facts": facts("192.0.2.12"), "grimbots_service_address": "10.20.0.12"},
    "pg3": {"ansible_facts": facts("192.0.2.13"), "grimbots_service_address": Undefined()},
    "bare": {},
    "blank": {"ansible_facts": facts("192.0.2.14"), "grimbots_service_address": ""},
}


def test_service_address_prefers_the_inventory_override():
    assert topology.service_address("pg2", HOSTVARS) == "10.20.0.12"


def test_service_address_falls_back_to_the_default_route():
    assert topology.service_address("pg1", HOSTVARS) == "192.0.2.11"
    assert topology.service_address("pg3", HOSTVARS) == "192.0.2.13"
    assert topology.service_address("blank", HOSTVARS) == "192.0.2.14"


def test_service_address_is_empty_without_facts_or_override():
    assert topology.service_address("bare", HOSTVARS) == ""
    assert topology.service_address("unknown", HOSTVARS) == ""


def test_endpoints_host_by_host_then_port_by_port():
    assert topology.endpoints(["pg1", "pg2"], HOSTVARS, [7000, "7001"]) == [
        "192.0.2.11:7000",
        "192.0.2.11:7001",
        "10.20.0.12:7000",
        "10.20.0.12:7001",
    ]
    assert topology.endpoints(["pg2"], HOSTVARS, 26379) == ["10.20.0.12:26379"]
    assert topology.endpoints([], HOSTVARS, 1) == []


def test_postgres_dsn_lists_every_member_and_encodes_the_secret():
    dsn = topology.postgres_dsn(["pg1", "pg2"], HOSTVARS, 5432, "grimbots", "grimbots", "p/a ss@:%")
    assert dsn == (
        "postgresql+psycopg2://grimbots:p%2Fa%20ss%40%3A%25@/grimbots"
        "?host=192.0.2.11:5432&host=10.20.0.12:5432&target_session_attrs=read-write"
    )


def test_postgres_dsn_refuses_an_empty_cluster():
    with pytest.raises(ValueError, match="no hosts"):
        topology.postgres_dsn([], HOSTVARS, 5432, "d", "u", "p")


@pytest.mark.parametrize(
    ("groups", "phase"),
    [
        ({"app": ["a1"], "redis": ["r1"]}, 1),
        ({"app": ["a1", "a2", "a3"], "redis": ["r1", "r2", "r3"], "lb": ["l1"]}, 1),
        ({"app": ["a1"], "redis": ["r1"], "postgres": ["p1", "p2", "p3"]}, 2),
        ({"postgres": ["p1"], "lb": ["l1"], "redis": ["r1", "r2"]}, 2),
        ({"postgres": ["p1"], "lb": ["l1"], "redis": ["r1", "r2", "r3"], "app": ["a1"]}, 3),
        ({"postgres": [], "lb": ["l1"], "redis": ["r1", "r2", "r3"]}, 1),
    ],
)
def test_inventory_phase_follows_the_groups(groups, phase):
    assert topology.inventory_phase(groups) == phase


def test_inventory_phase_reads_renamed_groups():
    groups = {"db": ["p1"], "edge": ["l1"], "kv": ["r1", "r2", "r3"]}
    assert topology.inventory_phase(groups, redis="kv", postgres="db", lb="edge") == 3
    assert topology.inventory_phase(groups) == 1


def test_no_role_or_playbook_derives_an_address_itself():
    """The default route's address is read in one place: the topology layer."""
    root = Path(__file__).resolve().parents[1]
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for base in ("roles", "playbooks")
        for path in sorted((root / base).rglob("*"))
        if path.is_file() and path.suffix in {".yml", ".yaml", ".j2", ".py"}
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if "default_ipv4" in line and "roles/grimbots/" not in str(path) and not line.lstrip().startswith("#")
    ]
    assert offenders == []
