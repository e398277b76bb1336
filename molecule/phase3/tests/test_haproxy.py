"""HAProxy in front of the app servers and the PostgreSQL cluster: every app server UP and used, the
PostgreSQL listeners routed by Patroni's checks, the stats page closed to anonymous clients."""

import csv
import io
import shlex

from conftest import APPS, LB, sql_through_lb

STATS_USER = "stats"  # roles/haproxy default (haproxy_stats_user)


def stats(hosts, lab_vars) -> list[dict]:
    user = lab_vars.get("haproxy_stats_user", STATS_USER)
    auth = shlex.quote(f"{user}:{lab_vars['vault_haproxy_stats_password']}")
    out = hosts[LB].check_output(f"curl -s -m 5 -u {auth} 'http://127.0.0.1:8404/stats;csv'")
    return list(csv.DictReader(io.StringIO(out.lstrip("# "))))


def servers(rows: list[dict], backend: str) -> dict:
    return {
        r["svname"]: r for r in rows if r["pxname"] == backend and r["svname"] not in ("FRONTEND", "BACKEND")
    }


def test_every_app_server_is_up(hosts, lab_vars):
    app = servers(stats(hosts, lab_vars), "app")
    assert sorted(app) == APPS, app.keys()
    assert all(s["status"] == "UP" for s in app.values()), {k: s["status"] for k, s in app.items()}


def test_requests_through_https_reach_every_app_server(hosts, lab_vars):
    before = {k: int(s["stot"]) for k, s in servers(stats(hosts, lab_vars), "app").items()}
    for _ in range(30):
        out = hosts[LB].run("curl -sk -m 5 -o /dev/null -w '%{http_code}' https://127.0.0.1/health")
        assert out.stdout == "200", out.stdout + out.stderr
    after = {k: int(s["stot"]) for k, s in servers(stats(hosts, lab_vars), "app").items()}
    assert all(after[k] > before[k] for k in APPS), (before, after)


def test_plain_http_is_redirected_to_https(hosts):
    out = hosts[LB].check_output(
        "curl -s -m 5 -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1/health"
    )
    code, location = out.split(" ", 1)
    assert code in ("301", "302", "308") and location.startswith("https://"), out


def test_the_stats_page_refuses_a_client_without_credentials(hosts):
    out = hosts[LB].check_output("curl -s -m 5 -o /dev/null -w '%{http_code}' 'http://127.0.0.1:8404/stats'")
    assert out == "401", out


def test_5000_reaches_the_primary_and_5001_a_replica(hosts, addresses, lab_vars):
    """psql through the load balancer's listeners, as the app user."""
    query = "select pg_is_in_recovery()"
    assert sql_through_lb(hosts, addresses, lab_vars, 5000, query) == "f"
    assert sql_through_lb(hosts, addresses, lab_vars, 5001, query) == "t"
    rows = stats(hosts, lab_vars)
    assert sum(s["status"] == "UP" for s in servers(rows, "pg_primary").values()) == 1
    assert sum(s["status"] == "UP" for s in servers(rows, "pg_replicas").values()) == 2
