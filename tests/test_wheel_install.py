"""The wheel, installed by pip into a fresh virtualenv, runs the example project.

The other tests import the package from a wheel too, but into an env whose dependencies
tox installed from its own lists. Here pip installs the wheel with nothing but what its
metadata asks for (from the package index), and the example project, which lives in the
repository, not in the wheel, is checked and served by that venv's Python alone: a module
left out of the wheel, or a dependency left out of its metadata, fails these tests.

They take about a minute (a build, a venv, a pip install), so they run only where
``ACBV_TEST_WHEEL=1``: tox sets it in one env, ``py313-django61``.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

import django_async_cbv
from tests.asgi_servers import UVICORN_H11, AsgiServer, ServerKind
from tests.test_example_e2e import example_env, fetch

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = ROOT / "example_project"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("ACBV_TEST_WHEEL") != "1",
        reason="the wheel install test runs where ACBV_TEST_WHEEL=1 (tox: py313-django61)",
    ),
]


@dataclasses.dataclass(frozen=True)
class _VenvServer(ServerKind):
    """A server kind run by another interpreter than the tests' own."""

    python: str = ""

    def command(self, app: str, *, lifespan: bool) -> list[str]:
        return [self.python, *super().command(app, lifespan=lifespan)[1:]]


def _run(argv: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel built from this tree (its openapi extra included),
    the dependencies its metadata names, and uvicorn."""
    work = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", ROOT])
    (wheel,) = (work / "dist").glob("django_async_cbv-*.whl")
    _run([sys.executable, "-m", "venv", work / "venv"])
    python = work / "venv" / "bin" / "python"
    # The example project serves Swagger UI: the openapi extra.
    _run([python, "-m", "pip", "install", "-q", f"{wheel}[openapi]", "uvicorn"])
    return python


@pytest.fixture
def child_env(tmp_path: Path) -> dict[str, str]:
    """The example project's environment, with nothing of this checkout on the path."""
    env = example_env(tmp_path / "example.sqlite3")
    env.pop("PYTHONPATH", None)
    return env


def test_the_installed_wheel_is_what_imports(
    venv_python: Path, child_env: dict[str, str], tmp_path: Path
) -> None:
    """The venv imports the package from its own site-packages, at this version, and
    pip finds every dependency that the metadata names installed."""
    code = "import django_async_cbv as p; print(p.__version__); print(p.__file__)"
    out = _run([venv_python, "-c", code], env=child_env, cwd=tmp_path).stdout.split()
    assert out[0] == django_async_cbv.__version__
    assert Path(out[1]).is_relative_to(venv_python.parent.parent)
    _run([venv_python, "-m", "pip", "check"], env=child_env, cwd=tmp_path)


def test_the_example_project_checks_and_serves_on_the_wheel(
    venv_python: Path, child_env: dict[str, str], tmp_path: Path
) -> None:
    """``manage.py check`` finds no error, and uvicorn in the venv answers a JSON API request."""
    manage = EXAMPLE_DIR / "manage.py"
    check = _run([venv_python, manage, "check"], env=child_env, cwd=tmp_path)
    # Its warnings (local-memory counters without REDIS_URL) go to stderr; errors fail.
    assert "System check identified" in check.stdout + check.stderr
    assert "ERRORS:" not in check.stderr
    _run([venv_python, manage, "migrate", "--no-input"], env=child_env, cwd=tmp_path)

    fields = {f.name: getattr(UVICORN_H11, f.name) for f in dataclasses.fields(ServerKind)}
    kind = _VenvServer(**fields, python=str(venv_python))
    server = AsgiServer(
        "example.asgi:application", child_env, kind=kind, app_dir=EXAMPLE_DIR, cwd=tmp_path
    )
    try:
        base_url = server.wait_ready()
        response = fetch(f"{base_url}/api/items/")
    finally:
        server.stop()
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["count"] == len(body["results"]) > 0
