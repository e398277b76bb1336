"""Filters of the topology layer (roles/grimbots): the one place that says
which address a host serves on, what the endpoints of a group are, and
which phase an inventory describes.

Every role and playbook reads hosts' addresses through these filters, so
`grimbots_service_address` set on a host moves every client of that host
with it (app, HAProxy, Sentinel, Patroni, etcd, verify).
"""

from urllib.parse import quote

OVERRIDE = "grimbots_service_address"


def _get(mapping, key, default=None):
    try:
        value = mapping[key]
    except (KeyError, TypeError):
        return default
    # Ansible's Undefined (hostvars of a host without that variable).
    if value is None or type(value).__name__.endswith("Undefined"):
        return default
    return value


def service_address(host, hostvars):
    """The address `host` serves on and its clients connect to: its
    `grimbots_service_address` when the inventory sets one, else the IPv4
    address of its default route (facts must have been gathered). Empty
    when neither is known: preflight reports that, naming the host."""
    host_vars = _get(hostvars, host, {})
    override = _get(host_vars, OVERRIDE)
    if override not in (None, ""):
        return str(override)
    facts = _get(host_vars, "ansible_facts", {}) or {}
    default_ipv4 = _get(facts, "default_ipv4", {}) or {}
    return str(_get(default_ipv4, "address", "") or "")


def service_addresses(hosts, hostvars):
    """service_address of every host, in the order given."""
    return [service_address(h, hostvars) for h in hosts or []]


def endpoints(hosts, hostvars, ports):
    """ "address:port" for every host and port (one port or a list), host by
    host: [a1:p1, a1:p2, a2:p1, ...]."""
    if isinstance(ports, (int, str)):
        ports = [ports]
    return [f"{address}:{int(port)}" for address in service_addresses(hosts, hostvars) for port in ports]


def postgres_dsn(hosts, hostvars, port, database, user, password):
    """The app's SQLAlchemy URL for a Patroni cluster: every member in
    inventory order; libpq keeps the first that accepts writes
    (target_session_attrs=read-write), so a failover needs no proxy."""
    if not hosts:
        raise ValueError("postgres_dsn: the cluster has no hosts")
    secret = quote(str(password), safe="")
    members = "&".join(f"host={ep}" for ep in endpoints(hosts, hostvars, port))
    return (
        f"postgresql+psycopg2://{quote(str(user), safe='')}:{secret}@/{quote(str(database), safe='')}"
        f"?{members}&target_session_attrs=read-write"
    )


def inventory_phase(groups, redis="redis", postgres="postgres", lb="lb"):
    """The highest phase an inventory's groups can hold: 3 with load
    balancers and 3+ redis hosts (Redis Cluster and Sentinel need a
    majority), 2 with postgres hosts, else 1."""

    def size(name):
        return len(_get(groups, name, []) or [])

    if size(postgres) == 0:
        return 1
    if size(lb) > 0 and size(redis) >= 3:
        return 3
    return 2


class FilterModule:
    def filters(self):
        return {
            "service_address": service_address,
            "service_addresses": service_addresses,
            "endpoints": endpoints,
            "postgres_dsn": postgres_dsn,
            "inventory_phase": inventory_phase,
        }
