"""What roles/common promises a host, checked on the converged containers."""

import subprocess

import pytest

BASE_PACKAGES = [
    "acl",
    "ca-certificates",
    "curl",
    "jq",
    "lsof",
    "sudo",
    "systemd-timesyncd",
    "tzdata",
]


@pytest.mark.parametrize("name", BASE_PACKAGES)
def test_base_package_installed(host, name):
    assert host.package(name).is_installed


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("net.core.somaxconn", "65535"),
        ("net.ipv4.tcp_max_syn_backlog", "65535"),
        ("net.ipv4.tcp_fin_timeout", "15"),
        ("net.ipv4.ip_local_port_range", "10240\t65535"),
        ("net.ipv4.tcp_tw_reuse", "1"),
    ],
)
def test_network_sysctl_is_live(host, key, value):
    # Network-namespaced keys are applied even in a container.
    assert host.check_output(f"sysctl -n {key}") == value


def test_global_sysctl_persisted_for_boot(host):
    # Every key, kernel-global ones included, is in the file systemd-sysctl
    # applies at boot.
    conf = host.file("/etc/sysctl.d/60-grimbots.conf").content_string.replace(" ", "")
    for line in ("fs.file-max=2097152", "vm.swappiness=10", "net.core.somaxconn=65535"):
        assert line in conf


def test_units_get_the_raised_open_file_limit(host):
    assert host.check_output("systemctl show --property DefaultLimitNOFILE --value") == "20000"
    # A unit started now runs with that limit.
    out = host.check_output("systemd-run --quiet --wait --pipe --collect sh -c 'ulimit -n'")
    assert out.strip() == "20000"


def test_login_sessions_get_the_raised_open_file_limit(host):
    conf = host.file("/etc/security/limits.d/60-grimbots.conf").content_string
    assert "* hard nofile 20000" in " ".join(conf.split())


def test_journal_is_persistent_and_capped(host):
    tag = "grimbots-common-test"
    host.check_output(f"logger -t {tag} persisted-entry")
    host.check_output("journalctl --sync")
    assert "persisted-entry" in host.check_output(f"journalctl -t {tag} --no-pager -o cat")
    # The entry landed on disk, under /var/log/journal, not in /run.
    assert host.check_output("find /var/log/journal -name '*.journal' | wc -l") != "0"
    cfg = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "SystemMaxUse=1G" in cfg
    assert "Storage=persistent" in cfg


def test_time_zone_is_utc(host):
    assert host.check_output("date +%Z") == "UTC"


def test_timesyncd_enabled_with_configured_servers(host):
    assert host.service("systemd-timesyncd").is_enabled
    cfg = host.check_output("systemd-analyze cat-config systemd/timesyncd.conf")
    assert "NTP=0.debian.pool.ntp.org" in cfg


def test_service_account_cannot_log_in(host):
    user = host.user("grimbots")
    assert user.exists
    assert user.home == "/opt/grimbots"
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000, "a service account is a system user"
    assert host.file("/opt/grimbots").user == "grimbots"
    assert host.run("su - grimbots -c true").rc != 0


def test_scenario_containers_carry_the_lab_label():
    # `make clean-stale` finds what a killed run left behind by this label.
    for name in ("common1", "common2"):
        label = subprocess.run(
            ["podman", "inspect", "--format", '{{ index .Config.Labels "io.grimbots.lab" }}', name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert label == "molecule", name
