"""etcd as Patroni's DCS: three healthy members, authentication turned on over a cluster that had none
(nothing lost), a client without credentials refused Patroni's keys, Patroni's user kept to its prefix,
and a member replaced by a new host under a write load that never fails (quorum kept)."""

import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import FIGURES, address, etcdctl, member_names

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from playbook_runs import ROOT, run_playbook

testinfra_hosts = [f"ansible://etcd{n}" for n in (1, 2, 3)]
PREFIX = "/service/grimbots_cluster"
REPLACE = ROOT / "playbooks/etcd_replace_member.yml"


@pytest.fixture(scope="module")
def root(lab_vars) -> str:
    return f"root:{lab_vars['vault_etcd_root_password']}"


@pytest.fixture(scope="module")
def patroni(lab_vars) -> str:
    return f"patroni:{lab_vars['vault_etcd_patroni_password']}"


def test_unit_runs_enabled_and_restarts(host):
    assert host.service("etcd").is_running and host.service("etcd").is_enabled
    assert "Restart=always" in host.check_output("systemctl show etcd -p Restart")


def test_endpoint_health_needs_a_user(host, root, patroni):
    # etcd 3.4 and 3.5: the health check's read is refused without a user ("user name is empty") and
    # the member reported unhealthy; any valid user makes it pass, even one without rights on the key.
    anonymous = etcdctl(host, "endpoint health")
    assert anonymous.rc != 0 and "user name is empty" in anonymous.stdout + anonymous.stderr
    for user in (root, patroni):
        out = etcdctl(host, "endpoint health", user)
        assert out.rc == 0 and "is healthy" in out.stdout + out.stderr, out.stdout + out.stderr


def test_three_members(host, root):
    assert member_names(host, root) == ["etcd1", "etcd2", "etcd3"]


def test_a_client_without_credentials_is_refused(host):
    for args in (f"get --prefix {PREFIX}/", f"put {PREFIX}/anonymous x", "get --prefix /"):
        out = etcdctl(host, args)
        assert out.rc != 0 and "user name is empty" in out.stderr, (args, out.stdout, out.stderr)


def test_wrong_password_is_refused(host):
    out = etcdctl(host, f"get --prefix {PREFIX}/", "patroni:not-the-password-0000")
    assert out.rc != 0 and "authentication failed" in out.stderr, out.stderr


def test_patronis_user_is_kept_to_its_prefix(host, patroni):
    key = f"{PREFIX}/probe-{host.check_output('hostname')}"
    assert etcdctl(host, f"put {key} ok", patroni).rc == 0
    assert etcdctl(host, f"get --print-value-only {key}", patroni).stdout.strip() == "ok"
    for args in ("put /elsewhere x", "get --prefix /", "user list"):
        out = etcdctl(host, args, patroni)
        assert out.rc != 0 and "permission denied" in out.stderr, (args, out.stdout, out.stderr)


def test_root_reads_and_writes_everything(host, root):
    assert etcdctl(host, "put /elsewhere/root-probe ok", root).rc == 0
    users = etcdctl(host, "user list", root)
    assert users.rc == 0 and users.stdout.split() == ["patroni", "root"], users.stdout


def test_keys_written_before_authentication_are_kept(host, patroni):
    out = etcdctl(host, f"get --print-value-only {PREFIX}/written-before-auth", patroni)
    assert out.stdout.strip() == "kept", out.stdout + out.stderr


def replacement_inventory(tmp: Path) -> str:
    """The scenario's inventory with etcd4 in etcd_members in place of etcd3, as an operator edits it."""
    source = Path(os.environ["MOLECULE_INVENTORY_FILE"])
    inventory = yaml.safe_load(source.read_text())
    members = inventory["etcd_members"]["hosts"]
    members["etcd4"] = members.pop("etcd3")
    target = tmp / "inventory"
    target.mkdir()
    (target / "hosts.yml").write_text(yaml.safe_dump(inventory))
    subprocess.run(["cp", "-r", str(source.parent / "group_vars"), str(target)], check=True)
    return str(target)


def swap(inventory: str, *extra: str) -> subprocess.CompletedProcess:
    """etcd_replace_member.yml on the edited inventory, as the operator runs it (the members are not
    the group postgres here, so the group is named on the command line too)."""
    names = [
        "-e",
        "grimbots_etcd_group=etcd_members",
        "-e",
        "etcd_old_member=etcd3",
        "-e",
        "etcd_new_member=etcd4",
    ]
    return run_playbook(REPLACE, *names, *extra, inventory=inventory)


def flat(output: str) -> str:
    """The output with every run of whitespace made one space (the callback wraps long messages)."""
    return " ".join(output.split())


def wait_healthy(host, user: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = etcdctl(host, "endpoint health --cluster", user)
        # etcd 3.5 prints the verdicts on stdout, 3.4 on stderr.
        if out.rc == 0 and (out.stdout + out.stderr).count("is healthy") == count:
            return
        time.sleep(1)
    raise AssertionError(f"not {count} healthy members within {timeout} s: {out.stdout} {out.stderr}")


def test_replacement_refuses_without_confirmation_or_quorum(nodes, root):
    host = nodes["etcd1"]
    with tempfile.TemporaryDirectory() as tmp:
        inventory = replacement_inventory(Path(tmp))
        unconfirmed = swap(inventory, "-e", "confirm=no")
        output = flat(unconfirmed.stdout + unconfirmed.stderr)
        assert unconfirmed.returncode != 0 and "Nothing done" in output, output
        nodes["etcd2"].check_output("systemctl stop etcd")
        try:
            refused = swap(inventory, "-e", "confirm=yes")
        finally:
            nodes["etcd2"].check_output("systemctl start etcd")
        output = flat(refused.stdout + refused.stderr)
        assert refused.returncode != 0, output
        assert "Nothing changed" in output and "Unhealthy: etcd2" in output, output
    wait_healthy(host, root, 3)
    assert member_names(host, root) == ["etcd1", "etcd2", "etcd3"]
    assert not nodes["etcd4"].exists("etcd")


def start_writer(client, endpoints: str, user: str) -> None:
    """In the background on the client: one write every 0.1 s through the members that stay, until
    /tmp/stop-writes appears (at most 300 s); counts of successes and failures in /tmp/write-result."""
    put = f"etcdctl --endpoints={endpoints} --command-timeout=5s put {PREFIX}/write-loop"
    loop = (
        "end=$(($(date +%s) + 300)); ok=0; failed=0; i=0; rm -f /tmp/stop-writes /tmp/write-errors; "
        "while [ ! -e /tmp/stop-writes ] && [ $(date +%s) -lt $end ]; do i=$((i+1)); "
        f"if ETCDCTL_USER={shlex.quote(user)} {put} $i >/dev/null 2>>/tmp/write-errors; "
        "then ok=$((ok+1)); else failed=$((failed+1)); fi; sleep 0.1; done; "
        "echo $ok $failed > /tmp/write-result"
    )
    client.run("rm -f /tmp/write-result")
    client.run(f"nohup sh -c {shlex.quote(loop)} >/dev/null 2>&1 &")


def stop_writer(client, timeout: float = 30) -> tuple[int, int]:
    client.run("touch /tmp/stop-writes")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = client.run("cat /tmp/write-result")
        if out.rc == 0 and out.stdout.strip():
            ok, failed = out.stdout.split()
            return int(ok), int(failed)
        time.sleep(0.5)
    raise AssertionError("the write loop did not stop")


def test_replace_etcd3_by_etcd4_under_writes(nodes, root, patroni):
    host = nodes["etcd1"]
    survivors = ",".join(f"http://{address(nodes[n])}:2379" for n in ("etcd1", "etcd2"))
    with tempfile.TemporaryDirectory() as tmp:
        inventory = replacement_inventory(Path(tmp))
        start_writer(host, survivors, patroni)
        started = time.monotonic()
        result = swap(inventory, "-e", "confirm=yes")
        elapsed = time.monotonic() - started
        ok, failed = stop_writer(host)
        assert result.returncode == 0, result.stdout + result.stderr
        rerun = swap(inventory, "-e", "confirm=yes")
    errors = host.run("cat /tmp/write-errors").stdout
    FIGURES.append(
        f"etcd3 replaced by etcd4: playbook {elapsed:.1f} s (etcd installed on etcd4 included); "
        f"{ok} writes during it, {failed} failed"
    )
    assert failed == 0 and ok > 10, errors
    assert member_names(host, root) == ["etcd1", "etcd2", "etcd4"]
    wait_healthy(host, root, 3)
    etcd4 = nodes["etcd4"]
    out = etcdctl(etcd4, f"get --print-value-only {PREFIX}/written-before-auth", patroni)
    assert out.stdout.strip() == "kept", out.stdout + out.stderr
    assert etcdctl(etcd4, f"get {PREFIX}/x").rc != 0, "auth must hold on the new member too"
    assert not nodes["etcd3"].service("etcd").is_running and not nodes["etcd3"].service("etcd").is_enabled
    assert rerun.returncode == 0 and not re.search(r"changed=[1-9]", rerun.stdout), rerun.stdout
