"""What the front page, the installation page and the README promise about running things."""

from __future__ import annotations

import ast
import asyncio
import json
import re
from pathlib import Path

import pytest
from django.test import Client
from docs.examples import quickstart

from tests.test_docs import DOCS, EXAMPLES, fences

ROOT = Path(__file__).resolve().parent.parent


def _dev_commands() -> set[str]:
    script = (ROOT / "scripts" / "dev.py").read_text(encoding="utf-8")
    return set(re.findall(r'add_parser\(\s*"(\w+)"', script))


def test_front_page_commands_are_the_dev_script() -> None:
    """index.md runs the project with the README's commands, which need only Python."""
    commands = [
        line.removeprefix("$ ")
        for block in fences(DOCS / "index.md")
        if block.language == "console"
        for line in block.content.splitlines()
        if line.startswith("$ ")
    ]
    assert commands == ["python3 scripts/dev.py example", "python3 scripts/dev.py test"]
    assert {"example", "test"} <= _dev_commands()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in commands:
        assert command in readme


@pytest.mark.urls("docs.examples.quickstart")
def test_gather_is_concurrent_under_wsgi(monkeypatch: pytest.MonkeyPatch) -> None:
    """installation.md: under WSGI the awaitables of one gather() still overlap.

    Each call waits for the other to have started: run one after the other, the first
    would wait until gather()'s timeout and leave its slot empty (null).
    """
    started = {"forecast": asyncio.Event(), "air_quality": asyncio.Event()}

    def meeting(mine: str, other: str) -> object:
        async def call(city: str) -> dict[str, str]:
            started[mine].set()
            await started[other].wait()
            return {"city": city}

        return call

    monkeypatch.setattr(quickstart, "fetch_forecast", meeting("forecast", "air_quality"))
    monkeypatch.setattr(quickstart, "fetch_air_quality", meeting("air_quality", "forecast"))
    # django.test.Client goes through Django's WSGI request handling, as runserver does.
    response = Client().get("/cities/oslo/")
    assert response.status_code == 200
    assert json.loads(response.content) == {
        "forecast": {"city": "oslo"},
        "air_quality": {"city": "oslo"},
    }


def _claims_redis_optional(text: str) -> bool:
    return bool(re.search(r"[Nn]othing\b[^.]*\bneeds Redis", text))


def test_readme_and_installation_show_caches_and_what_needs_redis() -> None:
    """Both show a CACHES block and say that no feature needs Redis."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    installation = (DOCS / "installation.md").read_text(encoding="utf-8")
    for text in (readme, installation):
        assert _claims_redis_optional(text)
    assert re.search(r"```python\n# [\w/.]+settings\.py\nCACHES = \{", readme)
    includes = [b.argument for b in fences(DOCS / "installation.md") if b.argument]
    assert any("settings_caches" in name for name in includes)


def test_no_example_imports_the_example_project() -> None:
    """The pages' code stands on its own: nothing in docs/examples imports example_project."""
    project = {p.name for p in (ROOT / "example_project").iterdir() if p.is_dir()}
    assert {"items", "example", "demo"} <= project
    found = []
    for path in sorted(EXAMPLES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in project]
    assert found == []
