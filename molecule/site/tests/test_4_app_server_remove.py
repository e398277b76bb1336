"""playbooks/app_server_remove.yml on the whole topology: bad input is refused before anything changes;
an app server taken out of service while payments are written through HAProxy costs no request and no
job (every acknowledged payment is stored and charged by the other servers' workers, the audit is
clean); the server stays in maintenance in HAProxy with its units stopped and disabled, and a second
run changes nothing. Then the way back the playbook documents: deploy_app.yml -e deploy_app_force=true
puts it back UP with its units enabled."""

import threading
import time

import pytest
import requests
from conftest import APPS, LB, PGS
from patroni_cluster import psql, wait_for_healthy_cluster
from playbook_runs import ROOT, recap, run_playbook
from scenario_facts import secret_values

REMOVE = ROOT / "playbooks/app_server_remove.yml"
VICTIM = APPS[-1]
SOCKET = "/run/haproxy/admin.sock"  # HAProxy's runtime API (roles/haproxy)
PROBE_INTERVAL = 0.2
PROBE_MAX_SECONDS = 300

# The lab's certificate is self-signed.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


class PaymentProbe(threading.Thread):
    """POST /api/pix through the load balancer every PROBE_INTERVAL s (each with its own idempotency
    key) until stopped, for at most PROBE_MAX_SECONDS; keeps every answer."""

    def __init__(self, lb_address: str) -> None:
        super().__init__(daemon=True)
        self.url = f"https://{lb_address}/api/pix"
        self.stop = threading.Event()
        self.answers: list[tuple[int | None, str | None, str]] = []  # status, payment id, error

    def run(self) -> None:
        started = time.monotonic()
        n = 0
        while not self.stop.is_set() and time.monotonic() - started < PROBE_MAX_SECONDS:
            n += 1
            body = {
                "bot_id": 1,
                "telegram_user_id": 5151,
                "amount_cents": 1500,
                "gateway": "stubpay",
                "idempotency_key": f"remove-{int(started)}-{n}",
            }
            try:
                response = requests.post(self.url, json=body, timeout=10, verify=False)
                payment = response.json().get("payment_id") if response.status_code in (200, 201) else None
                self.answers.append((response.status_code, payment, ""))
            except requests.RequestException as exc:
                self.answers.append((None, None, type(exc).__name__))
            self.stop.wait(PROBE_INTERVAL)


def remove(*args: str):
    result = run_playbook(REMOVE, *args, timeout=900)
    return result, result.stdout + result.stderr


@pytest.mark.parametrize(
    "variables, expected",
    [
        (["app_server_remove=site-app9", "confirm=yes"], "must name one or more hosts of the group app"),
        ([f"app_server_remove={','.join(APPS)}", "confirm=yes"], "names every app server"),
        ([f"app_server_remove={VICTIM}", "confirm=no"], "confirm must be 'yes'"),
    ],
    ids=["not an app server", "every app server", "not confirmed"],
)
def test_bad_input_is_refused_before_anything_changes(variables, expected, lab_vars):
    args = [arg for variable in variables for arg in ("-e", variable)]
    result, output = remove(*args)
    assert result.returncode != 0, output[-4000:]
    assert expected in output, output[-4000:]
    rows = recap(result.stdout)
    assert rows and all(row["changed"] == 0 for row in rows.values()), rows
    assert not any(secret in output for secret in secret_values(lab_vars)), "a secret leaked into the output"


def test_a_server_taken_out_loses_no_request_and_no_job(hosts, addresses, lab_vars):
    probe = PaymentProbe(addresses[LB])
    probe.start()
    try:
        time.sleep(3)
        result, output = remove("-e", f"app_server_remove={VICTIM}", "-e", "confirm=yes")
        time.sleep(3)
    finally:
        probe.stop.set()
        probe.join(15)
    assert result.returncode == 0, output[-5000:]
    assert not any(secret in output for secret in secret_values(lab_vars)), "a secret leaked into the output"
    rows = recap(result.stdout)
    assert rows[VICTIM]["changed"] >= 1, rows
    assert all(row["changed"] == 0 for name, row in rows.items() if name != VICTIM), rows

    failed = [answer for answer in probe.answers if answer[0] not in (200, 201) or not answer[1]]
    assert len(probe.answers) > 20 and not failed, (len(probe.answers), failed[:5])

    victim = hosts[VICTIM]
    for unit in ("grimbots.service", "grimbots-reconcile.timer", "grimbots-workers.target"):
        assert victim.run(f"systemctl is-active {unit}").stdout.strip() == "inactive", unit
        assert victim.run(f"systemctl is-enabled {unit}").stdout.strip() == "disabled", unit
    assert not victim.run("systemctl list-units --state=active --no-legend 'rq-worker@*'").stdout.strip()
    states = haproxy_states(hosts)
    assert states[VICTIM] == "MAINT", states
    assert all(states[name].startswith("UP") for name in APPS if name != VICTIM), states

    # The jobs of every acknowledged payment were taken by the other servers' workers.
    drained = hosts[APPS[0]].run("grimbots-app queues --wait-empty 180")
    assert drained.rc == 0, drained.stdout + drained.stderr
    leader = wait_for_healthy_cluster({name: hosts[name] for name in PGS})
    ids = ",".join(f"'{answer[1]}'" for answer in probe.answers)
    query = f"select count(*) from payments where id in ({ids}) and charge_ref is not null"

    def all_charged() -> bool:
        out = psql(hosts[leader], query, dsn="dbname=grimbots")
        assert out.rc == 0, out.stderr
        return int(out.stdout.strip()) == len(probe.answers)

    started = time.monotonic()
    while not all_charged():
        assert time.monotonic() - started < 120, "acknowledged payments still not charged after 120 s"
        time.sleep(2)
    audit = hosts[APPS[0]].run("grimbots-app audit --json --fail-on-stale")
    assert audit.rc == 0, audit.stdout + audit.stderr

    again, output = remove("-e", f"app_server_remove={VICTIM}", "-e", "confirm=yes")
    assert again.returncode == 0, output[-5000:]
    assert all(row["changed"] == 0 for row in recap(again.stdout).values()), recap(again.stdout)


def haproxy_states(hosts) -> dict:
    """svname -> status of the app backend's servers, from HAProxy's runtime API."""
    stat = hosts[LB].check_output(f"echo 'show stat -1 4 -1' | socat -t 5 stdio UNIX-CONNECT:{SOCKET}")
    return {
        fields[1]: fields[17]
        for fields in (line.split(",") for line in stat.splitlines())
        if fields[0] == "app"
    }


def test_deploy_app_forced_puts_the_server_back(hosts):
    assert haproxy_states(hosts)[VICTIM] == "MAINT"
    result = run_playbook(ROOT / "playbooks/deploy_app.yml", "-e", "deploy_app_force=true", timeout=1200)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    states = haproxy_states(hosts)
    assert all(states[name].startswith("UP") for name in APPS), states
    for unit in ("grimbots.service", "grimbots-reconcile.timer", "grimbots-workers.target"):
        assert hosts[VICTIM].run(f"systemctl is-enabled {unit}").stdout.strip() == "enabled", unit
        assert hosts[VICTIM].run(f"systemctl is-active {unit}").stdout.strip() == "active", unit
