"""What the load balancer promises in steady state, checked from this machine (a client) and through
HAProxy's runtime API on the converged container."""

import hashlib
import socket

import requests
from conftest import BACKENDS, address, runtime_api, server_stats

testinfra_hosts = ["ansible://hap-lb1"]


def test_haproxy_runs_in_master_worker_mode_under_systemd(host):
    service = host.service("haproxy")
    assert service.is_running and service.is_enabled
    main_pid = host.check_output("systemctl show -p MainPID --value haproxy")
    master = host.check_output(f"ps -o args= -p {main_pid}")
    assert master.startswith("/usr/sbin/haproxy -Ws ")
    workers = host.check_output(f"ps -o user=,args= --ppid {main_pid}").splitlines()
    assert workers and all(line.startswith("haproxy ") for line in workers), workers


def test_runtime_api_answers_at_admin_level(host):
    assert runtime_api(host, "show cli level").strip() == "admin"


def test_both_app_servers_are_up_with_health_checks(host, stats_auth, lb_ip):
    stats = server_stats(host)
    for name in BACKENDS:
        row = stats[("app", name)]
        assert row["status"] == "UP", row
        # "* L7OK" while a check is in progress.
        assert row["check_status"].lstrip("* ") == "L7OK" and row["check_code"] == "200", row
    # The stats page's CSV says the same.
    csv_text = requests.get(f"http://{lb_ip}:8404/stats;csv", auth=stats_auth, timeout=10).text
    rows = [line.split(",") for line in csv_text.splitlines() if line.startswith("app,hap-be")]
    assert {(row[1], row[17]) for row in rows} == {(name, "UP") for name in BACKENDS}


def test_https_requests_reach_both_app_servers(https, backends):
    # 20 requests over a certificate verified for the load balancer's address.
    answered_by = [https("GET", f"/go/test-{n}").headers["X-Backend-Server"] for n in range(20)]
    assert set(answered_by) == set(BACKENDS), answered_by
    assert min(answered_by.count(name) for name in BACKENDS) >= 5, answered_by


def test_a_webhook_reaches_the_app_whole_with_the_clients_address(https, host):
    body = b'{"update_id": 1, "message": {"text": "/start"}}'
    response = https("POST", "/webhook/telegram/1", data=body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["sha256"] == hashlib.sha256(body).hexdigest()
    # The app learns the client's address (this machine, as the lb sees it) and the original scheme.
    client = host.check_output("ip -4 -o route show default").split()[2]
    assert answer["forwarded_for"] == client and answer["forwarded_proto"] == "https", answer


def test_http_answers_a_redirect_to_https(lb_ip):
    response = requests.get(f"http://{lb_ip}/go/abc?x=1", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://{lb_ip}/go/abc?x=1"
    # No request reaches an app server over plain HTTP.
    assert "X-Backend-Server" not in response.headers


def test_stats_page_needs_the_password(lb_ip, stats_auth):
    url = f"http://{lb_ip}:8404/stats"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=(stats_auth[0], "wrong-password-123456"), timeout=10).status_code == 401
    response = requests.get(url, auth=stats_auth, timeout=10)
    assert response.status_code == 200 and "Statistics Report" in response.text


def test_metrics_serve_haproxy_metrics_to_prometheus_with_auth(lb_ip, stats_auth):
    url = f"http://{lb_ip}:8404/metrics"
    assert requests.get(url, timeout=10).status_code == 401
    response = requests.get(url, auth=stats_auth, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = response.text.splitlines()
    for name in BACKENDS:
        prefix = f'haproxy_server_status{{proxy="app",server="{name}",'
        up = [line for line in lines if line.startswith(prefix)]
        assert any('state="UP"' in line and line.endswith(" 1") for line in up), up
    assert any(line.startswith("haproxy_frontend_http_requests_total{") for line in lines)


def test_webhooks_over_the_rate_limit_from_one_source_get_429_json(backends, lab_vars, lb_ip, ca_file):
    # From hap-be2's address: limit + 5 webhook POSTs back to back.
    client = backends["hap-be2"]
    limit = lab_vars["haproxy_webhook_rate_limit"]
    url = f"https://{lb_ip}/webhook/payment/stubpay"
    post = f"curl -sk -o /dev/null -w '%{{http_code}} ' -X POST -d '{{}}' {url}"
    codes = client.check_output(f"for i in $(seq {limit + 5}); do {post}; done").split()
    assert codes == ["200"] * limit + ["429"] * 5, codes
    over = client.run(f"curl -sk -D - -X POST -d '{{}}' {url}")
    head, _, body = over.stdout.partition("\r\n\r\n")
    assert head.startswith("HTTP/2 429") or head.startswith("HTTP/1.1 429"), head
    assert "content-type: application/json" in head.lower()
    assert f"retry-after: {lab_vars['haproxy_webhook_rate_period']}" in head.lower()
    assert '"error": "too many requests"' in body
    # Only webhook paths are limited, and only for that source.
    assert client.check_output(f"curl -sk -o /dev/null -w '%{{http_code}}' https://{lb_ip}/go/x") == "200"
    other = requests.post(url, data=b"{}", verify=ca_file, timeout=10)
    assert other.status_code == 200, other.text


def test_oversized_body_gets_413_json_and_the_largest_allowed_passes(https, lab_vars):
    limit = lab_vars["haproxy_max_body_bytes"]
    allowed = https("POST", "/webhook/telegram/413", data=b"a" * limit)
    assert allowed.status_code == 200 and allowed.json()["bytes"] == limit
    over = https("POST", "/webhook/telegram/413", data=b"a" * (limit + 1))
    assert over.status_code == 413
    assert over.headers["Content-Type"] == "application/json"
    assert over.json() == {"error": "request body too large", "limit_bytes": limit}
    # A chunked body announces no length: refused once HAProxy has buffered past the limit.
    chunked = https("POST", "/webhook/telegram/413", data=iter([b"a" * 17000] * 3))
    assert chunked.status_code == 413, chunked.text
    small_chunked = https("POST", "/webhook/telegram/413", data=iter([b"a" * 1000] * 3))
    assert small_chunked.status_code == 200 and small_chunked.json()["bytes"] == 3000


def banner(ip: str, port: int) -> str:
    with socket.create_connection((ip, port), timeout=5) as connection:
        return connection.makefile("r").readline().strip()


def test_postgres_listeners_route_by_patroni_role(host, lb_ip, backends):
    stats = server_stats(host)
    assert stats[("pg_primary", "hap-be1")]["status"] == "UP"
    assert stats[("pg_primary", "hap-be2")]["status"] == "DOWN"
    assert stats[("pg_replicas", "hap-be2")]["status"] == "UP"
    assert stats[("pg_replicas", "hap-be1")]["status"] == "DOWN"
    for _ in range(5):
        assert banner(lb_ip, 5000) == "grimbots-test-double host=hap-be1 role=primary"
        assert banner(lb_ip, 5001) == "grimbots-test-double host=hap-be2 role=replica"


def test_backend_addresses_are_the_hosts_default_addresses(host, backends):
    state = runtime_api(host, "show servers state app")
    addresses = {line.split()[3]: line.split()[4] for line in state.splitlines()[2:] if line.strip()}
    assert addresses == {name: address(backend) for name, backend in backends.items()}
