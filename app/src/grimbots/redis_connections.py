"""Redis connections, by role. This module is the only place that builds a Redis client.

- ``cache``: locks, tracking data, rate limits. A standalone URL, or a Redis Cluster node list.
- ``queue``: RQ. A standalone URL, or a Sentinel-managed service. RQ blocks on BLMOVE/BRPOP here:
  the socket timeout (``redis_queue_socket_timeout``) must outlast the longest blocking pop, which
  ``grimbots.worker`` caps at a few seconds (the seed's 5 s timeout with RQ's 405 s pop broke it).
  Without one, a frozen queue primary hung requests and workers for as long as it was frozen.

Clients are built lazily, once per process; redis-py pools notice a fork and start afresh in the child.

In an ``interactive`` process (the web app) the queue fails fast: its commands wait at most 2 s (no
blocking pops there), and once a command timed out or a connection failed (a frozen primary), new
commands fail at once for ``redis_queue_retry_after`` seconds, then the next one tries again (after a
Sentinel failover it finds the new primary). While the queue is down a request answers 503 at once
instead of holding a server thread for the socket timeout (threads held that long queue every other
request behind them). The cluster client (cache) retries a failed command once instead of redis-py's
ten times. Workers and commands keep redis-py's behaviour.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

from .settings import Settings

HEALTH_CHECK_INTERVAL = 30
CACHE_SOCKET_TIMEOUT = 2.0


class RedisConnections:
    def __init__(self, settings: Settings, *, interactive: bool = False) -> None:
        self._settings = settings
        self._interactive = interactive
        self._cache: Redis | RedisCluster | None = None
        self._queue: Redis | None = None

    @property
    def cache(self) -> Redis | RedisCluster:
        if self._cache is None:
            self._cache = self._build_cache()
        return self._cache

    @property
    def queue(self) -> Redis:
        if self._queue is None:
            self._queue = self._build_queue()
        return self._queue

    def key(self, *parts: object) -> str:
        """A cache key under the configured prefix: ``key("lock", "update", 3, 99)``."""
        return ":".join([self._settings.redis_key_prefix, *map(str, parts)])

    def _build_cache(self) -> Redis | RedisCluster:
        s = self._settings
        common: dict[str, Any] = {
            "socket_timeout": CACHE_SOCKET_TIMEOUT,
            "socket_connect_timeout": CACHE_SOCKET_TIMEOUT,
            "socket_keepalive": True,
            "health_check_interval": HEALTH_CHECK_INTERVAL,
            "decode_responses": True,
        }
        if s.redis_cache_cluster_nodes:
            if self._interactive:
                common["retry"] = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.25), 1)
            return RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in s.redis_cache_cluster_nodes],
                username=s.redis_username or None,
                password=s.redis_password or None,
                max_connections=s.redis_cache_pool_size,
                **common,
            )
        return Redis.from_url(s.redis_cache_url, max_connections=s.redis_cache_pool_size, **common)

    def _build_queue(self) -> Redis:
        s = self._settings
        # Longer than the worker's blocking pop (grimbots.worker.Worker.STOP_POLL_SECONDS).
        common: dict[str, Any] = {
            "socket_timeout": s.redis_queue_socket_timeout or None,
            "socket_connect_timeout": CACHE_SOCKET_TIMEOUT,
            "socket_keepalive": True,
            "health_check_interval": HEALTH_CHECK_INTERVAL,
            "max_connections": s.redis_queue_pool_size,
        }
        if self._interactive:
            # No blocking pops here (those are the workers'): a command waits at most the cache's bound.
            common["socket_timeout"] = min(
                s.redis_queue_socket_timeout or CACHE_SOCKET_TIMEOUT, CACHE_SOCKET_TIMEOUT
            )
        if self._interactive and s.redis_queue_retry_after > 0:
            outage = Outage(s.redis_queue_retry_after)
            base = SentinelManagedConnection if s.redis_queue_sentinels else Connection
            common["connection_class"] = type("FailFastConnection", (FailFast, base), {"outage": outage})
        if s.redis_queue_sentinels:
            sentinel = Sentinel(
                list(s.redis_queue_sentinels),
                sentinel_kwargs={
                    "password": s.redis_sentinel_password or None,
                    "socket_timeout": 2,
                    "socket_connect_timeout": 2,
                    # A Sentinel that does not answer is skipped for the next one; redis-py's default
                    # (10 retries, each up to the timeout) held a discovery 13-26 s on a frozen or dead
                    # Sentinel host.
                    "retry": Retry(NoBackoff(), 0),
                },
                username=s.redis_username or None,
                password=s.redis_password or None,
                **common,
            )
            return sentinel.master_for(s.redis_queue_sentinel_service)
        return Redis.from_url(s.redis_queue_url, **common)

    def pool_stats(self) -> dict[str, int]:
        """Size and use of the cache pool(s) in this process, for ``/health``."""
        pools = _pools(self.cache)
        return {
            "pool_size": sum(p.max_connections for p in pools),
            "pool_in_use": sum(len(getattr(p, "_in_use_connections", ())) for p in pools),
            "pool_available": sum(len(getattr(p, "_available_connections", ())) for p in pools),
        }

    def close(self) -> None:
        for client in (self._cache, self._queue):
            if client is not None:
                client.close()
        self._cache = self._queue = None


def _pools(client: Redis | RedisCluster) -> list[Any]:
    if isinstance(client, RedisCluster):
        return [node.redis_connection.connection_pool for node in client.get_nodes() if node.redis_connection]
    return [client.connection_pool]


class Outage:
    """What the connections of one client share: whether the server failed lately."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self._lock = threading.Lock()
        self._until = 0.0
        self._reason = ""

    def check(self) -> None:
        """Raise at once while an outage holds."""
        with self._lock:
            left = self._until - time.monotonic()
            reason = self._reason
        if left > 0:
            raise RedisConnectionError(f"{reason} (next attempt in {left:.1f} s)")

    def trip(self, exc: Exception) -> None:
        with self._lock:
            self._until = time.monotonic() + self.hold
            self._reason = f"queue Redis unavailable: {type(exc).__name__}: {exc}"

    def clear(self) -> None:
        with self._lock:
            self._until = 0.0


class FailFast:
    """Mixed into a redis-py connection class: a failed connection or a command that timed out trips the
    client's :class:`Outage`; while it holds, connections neither connect nor send (a pooled connection
    to a frozen server would wait the socket timeout). A connection the server closed (a restart, a
    Sentinel reconfiguration) fails only its own command."""

    outage: Outage

    def connect(self) -> None:
        fresh = getattr(self, "_sock", None) is None
        if fresh:
            self.outage.check()
        try:
            super().connect()  # type: ignore[misc]
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self.outage.trip(exc)
            raise
        if fresh:
            self.outage.clear()

    def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        try:
            self.outage.check()
        except RedisConnectionError:
            self.disconnect()  # type: ignore[attr-defined]
            raise
        try:
            super().send_packed_command(*args, **kwargs)  # type: ignore[misc]
        except RedisTimeoutError as exc:
            self.outage.trip(exc)
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)  # type: ignore[misc]
        except RedisTimeoutError as exc:
            self.outage.trip(exc)
            raise
