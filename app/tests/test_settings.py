from __future__ import annotations

import pytest

from grimbots.settings import Settings, SettingsError


def test_defaults_are_phase_one():
    settings = Settings.from_env({})
    assert settings.is_sqlite
    assert settings.redis_cache_url == settings.redis_queue_url == "redis://127.0.0.1:6379/0"
    assert 3 <= settings.web_workers <= 8
    assert settings.web_worker_class == "gthread"


def test_values_are_parsed_into_types():
    settings = Settings.from_env(
        {
            "GRIMBOTS_DATABASE_URL": "postgresql+psycopg2://u@/g?host=pg1&host=pg2&target_session_attrs=read-write",
            "GRIMBOTS_REDIS_CACHE_CLUSTER_NODES": "redis1:7000, redis2:7001",
            "GRIMBOTS_REDIS_QUEUE_SENTINELS": "redis1:26379",
            "GRIMBOTS_GATEWAY_SECRETS": "stubpay:abc,other:d:e",
            "GRIMBOTS_WEB_WORKERS": "5",
            "GRIMBOTS_OUTBOUND_TIMEOUT": "2.5",
        }
    )
    assert not settings.is_sqlite
    assert settings.redis_cache_cluster_nodes == (("redis1", 7000), ("redis2", 7001))
    assert settings.redis_queue_sentinels == (("redis1", 26379),)
    assert settings.gateway_secrets == {"stubpay": "abc", "other": "d:e"}
    assert settings.web_workers == 5 and settings.outbound_timeout == 2.5


@pytest.mark.parametrize(
    ("name", "value"),
    [("GRIMBOTS_WEB_WORKERS", "many"), ("GRIMBOTS_REDIS_QUEUE_SENTINELS", "redis1"),
     ("GRIMBOTS_GATEWAY_SECRETS", "nosecret")],
)  # fmt: skip
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_secret_is_not_echoed():
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"GRIMBOTS_GATEWAY_SECRETS": "gw:"})
    assert "gw" in str(info.value)
