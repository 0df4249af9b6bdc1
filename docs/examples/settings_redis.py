"""CACHES entries for the Redis deployments of docs/redis.md (each one is tested).

Each function returns one ``CACHES`` setting; the tests put real servers behind them.
"""

from __future__ import annotations

from typing import Any


def plain(url: str) -> dict[str, Any]:
    # One Redis, through django-redis.
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,  # e.g. "redis://redis.internal:6379/0"
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 0.5,  # seconds
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }


def builtin(url: str) -> dict[str, Any]:
    # The same with Django's own backend: its options are redis-py's pool keywords.
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }


def tls_acl(tls_url: str, ca_file: str, username: str, password: str) -> dict[str, Any]:
    # TLS (rediss://) with the server's CA, as an ACL user with a password.
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": tls_url,  # e.g. "rediss://redis.internal:6380/0"
            "OPTIONS": {
                "USERNAME": username,
                "PASSWORD": password,
                "CONNECTION_POOL_KWARGS": {
                    "ssl_cert_reqs": "required",
                    "ssl_ca_certs": ca_file,
                },
            },
        }
    }


def blocking_pool(url: str) -> dict[str, Any]:
    # A capped pool that waits for a free connection instead of failing.
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {
                "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
                "CONNECTION_POOL_KWARGS": {"max_connections": 50, "timeout": 20},
            },
        }
    }


def sentinel(sentinels: list[tuple[str, int]]) -> dict[str, Any]:
    # The master of the service "mymaster", found through its sentinels.
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://mymaster/0",  # redis://SERVICE/DB
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": sentinels,  # e.g. [("sentinel-1", 26379), ("sentinel-2", 26379)]
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }


def cluster(node_url: str) -> dict[str, Any]:
    # Redis Cluster (or a managed cluster endpoint), through django-redis and the
    # library's cluster client and connection factory.
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            # One node (or the managed service's cluster endpoint): the other nodes
            # are discovered from it.
            "LOCATION": node_url,  # e.g. "redis://10.0.0.1:7000/0"
            "OPTIONS": {
                "CLIENT_CLASS": "django_async_cbv.redis_cluster.ClusterClient",
                "CONNECTION_FACTORY": "django_async_cbv.redis_cluster.ClusterConnectionFactory",
                "SOCKET_CONNECT_TIMEOUT": 0.5,  # seconds
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
