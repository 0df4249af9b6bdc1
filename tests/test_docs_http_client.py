"""The AsyncHTTPClient examples of docs/upstream.md, against a real upstream on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from docs.examples import asgi_shutdown, upstream_client

from django_async_cbv import CircuitState, get_breaker
from django_async_cbv.client import sessions
from tests.http_upstream import Upstream

pytestmark = pytest.mark.urls("docs.examples.upstream_client")


@pytest.fixture(autouse=True)
def users_api(upstream: Upstream) -> Iterator[None]:
    upstream.hits.clear()
    upstream.plans.clear()
    breakers = {"users": {"failure_threshold": 2, "recovery_timeout": 60}}
    with override_settings(
        USERS_API_URL=upstream.url + "/api", ASYNC_CBV={"CIRCUIT_BREAKERS": breakers}
    ):
        yield


async def test_the_card_relays_the_user(upstream: Upstream) -> None:
    upstream.plan("/api/users/42", [(200, {}, {"id": 42, "name": "Ada", "email": "a@x"})])
    response = await AsyncClient().get("/users/42/card/")
    assert response.status_code == 200
    assert json.loads(response.content) == {"id": 42, "name": "Ada"}


async def test_upstream_failures_become_502_then_503_once_the_breaker_opens(
    upstream: Upstream,
) -> None:
    client = AsyncClient()
    upstream.plan("/api/users/1", [500, 500])
    for _ in range(2):
        response = await client.get("/users/1/card/")
        assert response.status_code == 502
        assert b"Internal" not in response.content  # the upstream body is never relayed
    assert get_breaker("users").state is CircuitState.OPEN
    response = await client.get("/users/1/card/")
    assert response.status_code == 503
    assert upstream.hits["/api/users/1"] == 2


async def test_search_quotes_the_name_and_maps_404(upstream: Upstream) -> None:
    upstream.plan("/api/by-name/a%2Fb%3F", [(200, {}, {"id": 7})])
    client = AsyncClient()
    found = await client.get("/users/search/", {"name": "a/b?"})
    assert json.loads(found.content) == {"id": 7}
    upstream.plan("/api/by-name/nobody", [404])
    missing = await client.get("/users/search/", {"name": "nobody"})
    assert missing.status_code == 404
    assert json.loads(missing.content)["detail"] == "No such user."


async def test_the_lifespan_shutdown_closes_the_loops_sessions(upstream: Upstream) -> None:
    await upstream_client.users_api().get("/warm-up")
    session = sessions.get(f"http://127.0.0.1:{upstream.port}")
    assert session is not None
    assert not session.closed
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asgi_shutdown.application({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert session.closed
