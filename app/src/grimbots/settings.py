"""Settings: read once from ``GRIMBOTS_*`` environment variables into one typed, frozen object.

Every field here is documented in ``app/README.md`` (the Ansible roles template the env file from it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

PREFIX = "GRIMBOTS_"
QUEUE_NAMES = ("tasks", "gateway", "webhook")


class SettingsError(ValueError):
    """A ``GRIMBOTS_*`` variable holds a value that cannot be used."""


def _default_web_workers() -> int:
    # The seed's formula: max(3, min(2 * CPU + 1, 8)).
    return max(3, min(2 * (os.cpu_count() or 1) + 1, 8))


def _host_ports(value: str) -> tuple[tuple[str, int], ...]:
    """Parse ``"h1:7000,h2:7000"`` into ``(("h1", 7000), ("h2", 7000))``."""
    nodes = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise SettingsError(f"expected host:port, got {item!r}")
        nodes.append((host, int(port)))
    return tuple(nodes)


def _secrets(value: str) -> dict[str, str]:
    """Parse ``"stubpay:s3cret,other:x"`` into ``{"stubpay": "s3cret", "other": "x"}``."""
    result = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, secret = item.partition(":")
        if not sep or not name or not secret:
            raise SettingsError(f"expected gateway:secret, got {item.split(':')[0]!r}:<hidden>")
        result[name] = secret
    return result


@dataclass(frozen=True)
class Settings:
    # Storage
    database_url: str = "sqlite:///grimbots.db"
    db_pool_size: int = 10
    db_max_overflow: int = 10
    # Bounds on every wait for PostgreSQL (seconds), so a frozen server fails requests instead of
    # hanging them: per host while connecting, per wait on a query (0: none), for a pool slot.
    db_connect_timeout: float = 2.0
    db_query_timeout: float = 5.0
    db_pool_timeout: float = 10.0
    # After no database host accepted a connection, new connections in the process fail at once for
    # this long (seconds; 0: every one tries), so that an outage answers 503 fast.
    db_retry_after: float = 1.0
    # TCP keepalive idle time (seconds); a host that stops answering is dropped within about twice this.
    db_keepalive_seconds: int = 10
    # Redis, role "cache": locks, tracking, rate limits. A standalone URL or a Redis Cluster node list.
    redis_cache_url: str = "redis://127.0.0.1:6379/0"
    redis_cache_cluster_nodes: tuple[tuple[str, int], ...] = ()
    redis_cache_pool_size: int = 50
    # Redis, role "queue": RQ. A standalone URL or a Sentinel-managed service.
    redis_queue_url: str = "redis://127.0.0.1:6379/0"
    redis_queue_sentinels: tuple[tuple[str, int], ...] = ()
    redis_queue_sentinel_service: str = "grimbots-queue"
    redis_queue_pool_size: int = 30
    # Seconds a queue command may wait for an answer (0: forever); more than a worker's blocking pop.
    redis_queue_socket_timeout: float = 5.0
    # Web app: after a command or connection to the queue Redis failed, queue commands fail at once for
    # this long (seconds; 0: every one tries), so that an outage answers 503 fast.
    redis_queue_retry_after: float = 1.0
    # ACL user and password for the cluster nodes and the Sentinel-managed queue primary (a standalone
    # URL carries its own credentials). An empty user is Redis's ``default`` user.
    redis_username: str = ""
    redis_password: str = ""
    redis_sentinel_password: str = ""
    redis_key_prefix: str = "grimbots"
    # Behaviour
    gateway_secrets: dict[str, str] = field(default_factory=dict)
    # Master secret of the Telegram webhooks' per-bot secret tokens (grimbots.telegram_auth); empty:
    # every Telegram update is refused with 503.
    telegram_webhook_secret: str = ""
    outbound_url: str = ""
    outbound_timeout: float = 10.0
    max_body_bytes: int = 65536
    telegram_link_base: str = "https://t.me"
    tracking_ttl_seconds: int = 30 * 24 * 3600
    queue_backlog_alert: int = 1000
    reconcile_stale_seconds: int = 60
    job_timeout_seconds: int = 60
    log_level: str = "INFO"
    # gunicorn (read by grimbots/gunicorn_conf.py)
    bind: str = "127.0.0.1:8000"
    web_workers: int = field(default_factory=_default_web_workers)
    web_threads: int = 4
    web_worker_class: str = "gthread"
    web_timeout: int = 120
    graceful_timeout: int = 30
    keepalive: int = 5
    max_requests: int = 1000
    max_requests_jitter: int = 50

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``GRIMBOTS_<FIELD>`` variables; unset variables keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            try:
                values[f.name] = _convert(f.name, raw)
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"{PREFIX}{f.name.upper()}: {exc}") from exc
        return cls(**values)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_PARSERS = {
    "redis_cache_cluster_nodes": _host_ports,
    "redis_queue_sentinels": _host_ports,
    "gateway_secrets": _secrets,
}


def _convert(name: str, raw: str) -> object:
    if name in _PARSERS:
        return _PARSERS[name](raw)
    default = Settings.__dataclass_fields__[name].default
    if name == "web_workers" or isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw
