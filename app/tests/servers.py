"""Real servers for the test suite: Redis (standalone, Cluster, Sentinel) and PostgreSQL.

Each runs from the Debian packages' binaries, in a temp dir, on free loopback ports, in its own
process group, and is killed by :meth:`ServerGroup.stop` (called from session fixture finalizers).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

HOST = "127.0.0.1"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(bus_offset: int = 0) -> int:
    """A free loopback port (and, for Cluster nodes, a free bus port ``port + bus_offset``)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if not bus_offset or (port + bus_offset <= 65535 and _bindable(port + bus_offset)):
            return port
    raise RuntimeError("no free port")


def wait_for(check: Callable[[], object], what: str, timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last})")


@dataclass
class ServerGroup:
    """Processes started for one fixture; each in its own session so a kill reaches its children."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="grimbots-test-")))
    procs: list[subprocess.Popen] = field(default_factory=list)

    def spawn(self, args: list[str], name: str, **kwargs: object) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - kept open for the process
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """The server ``pid`` and every process under it stopped (SIGSTOP), as a paused host's are: the
    kernel still accepts connections and acknowledges data, nothing answers. PostgreSQL's backends
    are in sessions of their own, hence the walk down the process tree."""
    pids = _descendants(pid)
    for each in pids:
        os.kill(each, signal.SIGSTOP)
    try:
        yield
    finally:
        for each in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGCONT)


def start_redis(group: ServerGroup, name: str, *extra: str, port: int | None = None) -> int:
    port = port or free_port()
    data = group.workdir / name
    data.mkdir()
    group.spawn(
        ["redis-server", "--port", str(port), "--bind", HOST, "--dir", str(data), "--save", "",
         "--appendonly", "no", "--protected-mode", "no", *extra],
        name,
    )  # fmt: skip
    wait_for(lambda: redis.Redis(host=HOST, port=port).ping(), f"redis {name}:{port}")
    return port


def start_cluster(group: ServerGroup) -> list[tuple[str, int]]:
    """Six nodes, three primaries with a replica each, formed by ``redis-cli --cluster create``."""
    ports = []
    for i in range(6):
        port = free_port(bus_offset=10000)
        ports.append(
            start_redis(
                group, f"cluster{i}", "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                "--cluster-config-file", str(group.workdir / f"nodes-{port}.conf"), port=port,
            )
        )  # fmt: skip
    subprocess.run(
        ["redis-cli", "--cluster", "create", *[f"{HOST}:{p}" for p in ports],
         "--cluster-replicas", "1", "--cluster-yes"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip

    def all_ok() -> bool:
        for p in ports:
            info = redis.Redis(host=HOST, port=p, decode_responses=True).cluster("info")
            if info.get("cluster_state") != "ok":
                return False
        return True

    wait_for(all_ok, "redis cluster_state:ok", timeout=30)
    return [(HOST, p) for p in ports]


SENTINEL_SERVICE = "grimbots-queue"


def start_sentinel(group: ServerGroup) -> dict[str, object]:
    """A primary, a replica, and one ``redis-sentinel`` watching them as ``grimbots-queue``."""
    primary = start_redis(group, "queue-primary")
    replica = start_redis(group, "queue-replica", "--replicaof", HOST, str(primary))
    port = free_port()
    conf = group.workdir / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind {HOST}\ndir {group.workdir}\n"
        f"sentinel monitor {SENTINEL_SERVICE} {HOST} {primary} 1\n"
        f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 2000\n"
        f"sentinel failover-timeout {SENTINEL_SERVICE} 10000\n"
    )
    group.spawn(["redis-sentinel", str(conf)], "sentinel")
    sentinel = redis.Redis(host=HOST, port=port, decode_responses=True)
    wait_for(lambda: sentinel.sentinel_get_master_addr_by_name(SENTINEL_SERVICE), "sentinel")
    wait_for(
        lambda: redis.Redis(host=HOST, port=replica).info("replication")["master_link_status"] == "up",
        "replica link",
    )
    return {"sentinels": [(HOST, port)], "service": SENTINEL_SERVICE, "primary": primary, "replica": replica}


def _pg_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    found = candidates[-1] if candidates else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: apt-get install postgresql")
    return found


def start_postgres(group: ServerGroup) -> int:
    """A throwaway cluster (fsync off). PostgreSQL refuses root, so as root it runs as ``postgres``."""
    data = group.workdir / "pgdata"
    as_user: dict[str, object] = {}
    if os.geteuid() == 0:
        as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
        shutil.chown(group.workdir, "postgres", "postgres")
    subprocess.run(
        [_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, timeout=60, **as_user,
    )  # fmt: skip
    port = free_port()
    group.spawn(
        [_pg_bin("postgres"), "-D", str(data), "-p", str(port), "-k", str(group.workdir),
         "-c", f"listen_addresses={HOST}", "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "full_page_writes=off", "-c", "max_connections=300"],
        "postgres", **as_user,
    )  # fmt: skip
    import psycopg2

    wait_for(lambda: psycopg2.connect(host=HOST, port=port, user="postgres", dbname="postgres"), "postgres")
    return port
