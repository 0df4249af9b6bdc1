#!/usr/bin/env python3
"""Development commands; they need nothing but Python 3.11+.

    python3 scripts/dev.py example [--port 8000]   serve the example project
    python3 scripts/dev.py test [-- PYTEST_ARGS]   tests, lint, types and docs via tox

Both create a virtualenv at ``.venv`` beside the repository root (or at
``$DEV_VENV``) with the running interpreter and install what they need into it,
again only when what they install has changed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = ROOT / "example_project"
CHECKS_ENVS = ("lint", "type", "docs")


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(argv: Sequence[str | os.PathLike[str]]) -> None:
    """Run a command from the repository root, stopping on failure."""
    say("$ " + " ".join(str(arg) for arg in argv))
    result = subprocess.run(argv, cwd=ROOT, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def venv_python() -> Path:
    """Create the virtualenv if needed and return its interpreter."""
    venv = Path(os.environ.get("DEV_VENV") or ROOT / ".venv")
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        say(f"creating virtualenv {venv} with {sys.executable}")
        result = subprocess.run([sys.executable, "-m", "venv", venv], check=False)
        if result.returncode != 0:
            sys.exit(
                "Could not create the virtualenv. On Debian/Ubuntu install the venv "
                "module first: apt-get install python3-venv"
            )
    return python


def ensure_installed(python: Path, name: str, requirements: Sequence[str]) -> None:
    """pip-install ``requirements`` unless the same set is already installed.

    A stamp file in the virtualenv records a hash of the requirements, the
    interpreter and ``pyproject.toml``, so a changed dependency list triggers
    a new install and an unchanged one costs nothing.
    """
    digest = hashlib.sha256()
    digest.update(repr((sys.version, list(requirements))).encode())
    digest.update((ROOT / "pyproject.toml").read_bytes())
    stamp = python.parent.parent / f".dev-{name}.stamp"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    run([python, "-m", "pip", "install", "--quiet", *requirements])
    stamp.write_text(digest.hexdigest())


def example(port: int) -> None:
    """Migrate the example project's SQLite database, then serve it with uvicorn."""
    python = venv_python()
    ensure_installed(python, "example", ["-e", ".[redis]", "uvicorn[standard]"])
    run([python, EXAMPLE_DIR / "manage.py", "migrate", "--noinput"])
    argv = [
        str(python), "-m", "uvicorn", "example.asgi:application",
        "--app-dir", str(EXAMPLE_DIR), "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    cache = "django-redis at $REDIS_URL" if os.environ.get("REDIS_URL") else "local memory"
    say(f"serving http://127.0.0.1:{port}/ (SQLite, cache: {cache}); Ctrl+C stops")
    say("$ " + " ".join(argv))
    os.chdir(ROOT)
    os.execv(argv[0], argv)


def tox_env_for_this_python(python: Path) -> str:
    """The test env of tox.ini for the running Python with the newest Django it lists."""
    version = f"py{sys.version_info.major}{sys.version_info.minor}"
    listed = subprocess.run(
        [python, "-m", "tox", "list", "--no-desc"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    candidates = [
        (int(match.group(1)), env)
        for env in listed
        if (match := re.fullmatch(rf"{version}-django(\d+)", env))
    ]
    if not candidates:
        sys.exit(f"tox.ini has no test env for {version}; supported: {', '.join(listed)}")
    return max(candidates)[1]


def test(pytest_args: Sequence[str]) -> None:
    """Run the suite for this Python plus lint, type and docs through tox."""
    python = venv_python()
    ensure_installed(python, "tox", ["tox>=4.11"])
    envs = [tox_env_for_this_python(python), *CHECKS_ENVS]
    say(f"running tox envs: {', '.join(envs)}")
    if pytest_args:
        say(f"extra pytest arguments: {' '.join(pytest_args)}")
    argv = [str(python), "-m", "tox", "run", "-e", ",".join(envs)]
    if pytest_args:
        argv += ["--", *pytest_args]
    say("$ " + " ".join(argv))
    sys.stdout.flush()
    os.chdir(ROOT)
    os.execv(argv[0], argv)  # tox's exit status becomes ours


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="scripts/dev.py", description="Development commands.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("example", help="serve the example project on 127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    commands.add_parser(
        "test",
        help="run tests, lint, type checks and docs (arguments after -- go to pytest)",
        add_help=False,
    )
    # Everything after "test" belongs to pytest; argparse would try to read it.
    if argv[:1] == ["test"]:
        rest = list(argv[1:])
        test(rest[1:] if rest[:1] == ["--"] else rest)
        return
    args = parser.parse_args(argv)
    example(args.port)


if __name__ == "__main__":
    if sys.version_info < (3, 11):  # noqa: UP036 - explain instead of crashing on old Pythons
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    main(sys.argv[1:])
