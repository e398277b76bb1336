"""The role run as an operator runs it (tests/role_run.yml): bad input stops it before anything changes,
with the variable named and no secret printed; --check --diff works on a fresh host and changes nothing
on the converged one; a configuration or certificate HAProxy refuses never replaces the live one; a
certificate from the vault is served."""

import datetime
import hashlib
import ipaddress
import json
import ssl
from pathlib import Path

import pytest
import requests
import testinfra
from conftest import worker_pids
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playbook_runs import run_playbook, run_side_by_side

testinfra_hosts = ["ansible://hap-lb1"]

PLAYBOOK = Path(__file__).with_name("role_run.yml")
CONFIG = "/etc/haproxy/haproxy.cfg"


def recap(output: str, host: str) -> str:
    """The PLAY RECAP line of one host."""
    lines = [line for line in output.splitlines() if line.split(" ", 1)[0] == host and " : ok=" in line]
    return lines[-1] if lines else ""


BAD_VARIABLES = [
    ({"haproxy_app_group": "nobody"}, "haproxy_app_group: the inventory group 'nobody' has no hosts"),
    ({"haproxy_https_port": 70000}, "haproxy_https_port must be a TCP port"),
    ({"haproxy_stats_port": 443}, "Two listeners share a port"),
    ({"vault_haproxy_stats_password": ""}, "haproxy_stats_password (vault_haproxy_stats_password)"),
    ({"vault_haproxy_stats_password": "it's-a-long-password"}, "must not contain a quote"),
    ({"vault_haproxy_tls_pem": "not a certificate"}, "haproxy_tls_pem (vault_haproxy_tls_pem) holds no PEM"),
    ({"haproxy_tls_self_signed": False}, "is empty and haproxy_tls_self_signed is false"),
    ({"haproxy_max_body_bytes": 60000}, "haproxy_max_body_bytes (60000) must be at most"),
    ({"haproxy_retry_on": ["sometimes"]}, "haproxy_retry_on must be a list of"),
    ({"haproxy_check_inter": "2 seconds"}, "haproxy_check_inter must be a time"),
    ({"haproxy_webhook_rate_limit_exempt": ["telegram"]}, "haproxy_webhook_rate_limit_exempt"),
]
LB_ONLY = ["--limit", "hap-lb1,app"]


@pytest.fixture(scope="module")
def preflight_runs():
    # Each bad variable in its own run (the first failure stops a run), in check mode.
    runs = [["--check", "--diff", *LB_ONLY, "-e", json.dumps(extra)] for extra, _ in BAD_VARIABLES]
    return run_side_by_side(PLAYBOOK, runs, workers=3)


@pytest.mark.parametrize("case", range(len(BAD_VARIABLES)), ids=[n[:40] for _, n in BAD_VARIABLES])
def test_bad_variable_is_named_before_anything_changes(preflight_runs, case, stats_auth):
    named = BAD_VARIABLES[case][1]
    result = preflight_runs[case]
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert named in output, output
    assert "changed=0" in output
    assert stats_auth[1] not in output


def test_check_mode_on_the_converged_host_reports_no_change(stats_auth):
    result = run_playbook(PLAYBOOK, "--check", "--diff", *LB_ONLY)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "hap-lb1                    : ok=" in output and "changed=0" in output.split("hap-lb1 ")[-1], (
        output
    )
    assert stats_auth[1] not in output


def test_check_diff_on_a_fresh_host_shows_the_config_and_changes_nothing(stats_auth):
    fresh = testinfra.get_host("podman://hap-fresh1")
    result = run_playbook(PLAYBOOK, "--check", "--diff", "-e", '{"haproxy_test_hosts": "lb_fresh"}')
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "failed=0" in recap(output, "hap-fresh1"), output
    # The diff shows what would be written, without the stats password.
    assert "+frontend web" in output and "+backend app" in output, output
    assert "+    server hap-be1 " in output
    assert stats_auth[1] not in output
    assert not fresh.package("haproxy").is_installed
    assert not fresh.file(CONFIG).exists


def test_invalid_extra_config_is_refused_and_the_live_one_keeps_serving(host, https):
    before = host.file(CONFIG).sha256sum
    workers = worker_pids(host)
    bad = {"haproxy_extra_config": "backend broken\n  bogus-keyword 1"}
    result = run_playbook(PLAYBOOK, *LB_ONLY, "-e", json.dumps(bad))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "failed to validate" in output and "bogus-keyword" in output, output
    assert host.file(CONFIG).sha256sum == before
    assert "bogus-keyword" not in host.file(CONFIG).content_string
    # No reload happened and requests are served as before.
    assert worker_pids(host) == workers
    assert https("GET", "/go/after-bad-config").status_code == 200


def certificate_and_key(common_name: str, ip: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address(ip))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def served_certificate_sha256(ip: str) -> str:
    pem = ssl.get_server_certificate((ip, 443), timeout=10)
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def file_certificate_sha256(host, path: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(host.file(path).content_string)).hexdigest()


def test_certificate_from_the_vault_is_checked_then_served(host, lb_ip, tmp_path):
    self_signed = file_certificate_sha256(host, "/etc/haproxy/certs/self-signed.pem")
    assert served_certificate_sha256(lb_ip) == self_signed
    cert, key = certificate_and_key("grimbots-lb.test", lb_ip)
    _, other_key = certificate_and_key("other.test", lb_ip)
    key_line = key.splitlines()[1]

    # A key that does not match the certificate: refused by HAProxy before it is written.
    mismatched = run_playbook(
        PLAYBOOK, *LB_ONLY, "-e", json.dumps({"vault_haproxy_tls_pem": cert + other_key})
    )
    output = mismatched.stdout + mismatched.stderr
    assert mismatched.returncode != 0, output
    assert "Write the TLS certificate and key from haproxy_tls_pem" in output
    assert other_key.splitlines()[1] not in output
    assert not host.file("/etc/haproxy/certs/site.pem").exists
    assert served_certificate_sha256(lb_ip) == self_signed

    try:
        good = run_playbook(PLAYBOOK, *LB_ONLY, "-e", json.dumps({"vault_haproxy_tls_pem": cert + key}))
        output = good.stdout + good.stderr
        assert good.returncode == 0, output
        assert key_line not in output
        assert host.file("/etc/haproxy/certs/site.pem").mode == 0o600
        ca = tmp_path / "vault-cert.pem"
        ca.write_text(cert)
        response = requests.get(f"https://{lb_ip}/go/vault", verify=str(ca), timeout=10)
        assert response.status_code == 200
    finally:
        back = run_playbook(PLAYBOOK, *LB_ONLY)
    assert back.returncode == 0, back.stdout + back.stderr
    assert served_certificate_sha256(lb_ip) == self_signed
