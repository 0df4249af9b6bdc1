"""Check that a server answers correctly before it is measured.

A benchmark of a view that answers 404, 500 or a redirect measures nothing
useful, so every endpoint is requested once and its status and body are
checked (shape and values) before load starts, and once more afterwards.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ITEM_FIELDS = {"id", "name", "description", "price", "quantity", "is_active", "created_at"}
HELLO_BODY = {"message": "Hello, world!"}


class CheckError(AssertionError):
    """An endpoint answered with an unexpected status or body."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise CheckError(f"body is not JSON: {self.body[:200]!r}") from exc


def request(port: int, method: str, path: str, body: dict | None = None) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise CheckError(message)


def _check_item(obj: Any, what: str) -> None:
    _expect(isinstance(obj, dict), f"{what}: not an object: {obj!r}")
    _expect(set(obj) == ITEM_FIELDS, f"{what}: fields {sorted(obj)} != {sorted(ITEM_FIELDS)}")
    _expect(isinstance(obj["id"], int), f"{what}: id is not an integer")
    _expect(isinstance(obj["price"], str), f"{what}: price is not a string: {obj['price']!r}")
    _expect(isinstance(obj["is_active"], bool), f"{what}: is_active is not a boolean")


def check_hello(reply: Reply) -> None:
    _expect(reply.status == 200, f"hello: status {reply.status}, body {reply.body[:200]!r}")
    _expect(reply.json() == HELLO_BODY, f"hello: body {reply.body[:200]!r}")


def check_list(reply: Reply) -> None:
    _expect(reply.status == 200, f"list: status {reply.status}, body {reply.body[:300]!r}")
    data = reply.json()
    _expect(
        isinstance(data, dict) and {"count", "next", "previous", "results"} <= set(data),
        f"list: envelope keys {sorted(data) if isinstance(data, dict) else type(data)}",
    )
    _expect(data["count"] >= 1000, f"list: count {data['count']} < 1000")
    _expect(len(data["results"]) == 20, f"list: {len(data['results'])} results, expected 20")
    _expect(data["previous"] is None, "list: first page has a previous link")
    _expect(bool(data["next"]) and "page=2" in data["next"], f"list: next {data['next']!r}")
    for obj in data["results"]:
        _check_item(obj, "list")
    ids = [obj["id"] for obj in data["results"]]
    _expect(ids == sorted(ids) and ids[0] == 1, f"list: first page ids {ids}")


def check_page(first_id: int, size: int = 20) -> Callable[[Reply], None]:
    """A list page (numbered or cursor) whose rows are ``first_id`` and the next ones by pk."""

    def check(reply: Reply) -> None:
        _expect(reply.status == 200, f"page: status {reply.status}, body {reply.body[:300]!r}")
        data = reply.json()
        _expect(isinstance(data, dict) and "results" in data, "page: no results")
        for obj in data["results"]:
            _check_item(obj, "page")
        ids = [obj["id"] for obj in data["results"]]
        expected = list(range(first_id, first_id + size))
        _expect(ids == expected, f"page: ids {ids[:3]}..., expected {expected[:3]}...")
        _expect(bool(data.get("next")), "page: no next link")

    return check


def check_retrieve(pk: int) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        _expect(reply.status == 200, f"retrieve: status {reply.status}, body {reply.body[:300]!r}")
        data = reply.json()
        _check_item(data, "retrieve")
        _expect(data["id"] == pk, f"retrieve: id {data['id']} != {pk}")

    return check


def check_create(sent: dict) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        _expect(reply.status == 201, f"create: status {reply.status}, body {reply.body[:300]!r}")
        data = reply.json()
        _check_item(data, "create")
        _expect(data["name"] == sent["name"], f"create: name {data['name']!r}")
        _expect(data["price"] == sent["price"], f"create: price {data['price']!r}")
        _expect(data["quantity"] == sent["quantity"], "create: quantity differs")

    return check
