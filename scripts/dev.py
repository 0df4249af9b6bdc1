#!/usr/bin/env python3
"""Development commands; they need nothing but Python 3.11+.

    python3 scripts/dev.py example [--port 8000]   serve the example project
    python3 scripts/dev.py test [-- PYTEST_ARGS]   every test env of tox.ini that has an
                                                   interpreter here, lint, types and docs

Both create a virtualenv at ``.venv`` beside the repository root (or at
``$DEV_VENV``) with the running interpreter and install what they need into it,
again only when what they install has changed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = ROOT / "example_project"
CHECKS_ENVS = ("lint", "type", "docs")
# py312-django60 runs on python3.12; py311-django52-floor (lowest dependencies) on 3.11
TEST_ENV_RE = re.compile(r"py(\d)(\d+)-django\d+(?:-floor)?")


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
    ensure_installed(python, "example", ["-e", ".[redis,openapi]", "uvicorn[standard]"])
    run([python, EXAMPLE_DIR / "manage.py", "migrate", "--noinput"])
    argv = [
        str(python), "-m", "uvicorn", "example.asgi:application",
        "--app-dir", str(EXAMPLE_DIR), "--host", "127.0.0.1", "--port", str(port),
        # REMOTE_ADDR stays the peer's address: the rate limit demo keys by it, and a
        # forged X-Forwarded-For must not change it (see docs/ratelimit.md).
        "--no-proxy-headers",
    ]  # fmt: skip
    cache = "django-redis at $REDIS_URL" if os.environ.get("REDIS_URL") else "local memory"
    say(f"serving http://127.0.0.1:{port}/ (SQLite, cache: {cache}); Ctrl+C stops")
    say("$ " + " ".join(argv))
    os.chdir(ROOT)
    os.execv(argv[0], argv)


def tox_envs(python: Path) -> list[str]:
    """The env names of tox.ini, in its order."""
    return subprocess.run(
        [python, "-m", "tox", "list", "--no-desc"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()


def working_python(candidate: str | os.PathLike[str], version: str) -> Path | None:
    """The real interpreter behind ``candidate`` if it runs and is Python ``version``.

    A pyenv shim for a version that is installed but not selected exits non-zero
    ("command not found"), so it does not count; one that works resolves to the
    interpreter it runs, whose directory tox can then be pointed at.
    """
    probe = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)"
    try:
        result = subprocess.run(
            [candidate, "-c", probe], check=False, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) != 2 or lines[0] != version:
        return None
    return Path(lines[1])


def find_python(version: str) -> Path | None:
    """A working ``pythonX.Y``: on PATH, else the newest of pyenv's, else the running one."""
    name = f"python{version}"
    candidates: list[str | os.PathLike[str]] = []
    if on_path := shutil.which(name):
        candidates.append(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    patch_re = re.compile(rf"{re.escape(version)}\.(\d+)")
    installed = [
        (int(match.group(1)), path)
        for path in pyenv_root.glob(f"versions/{version}.*/bin/{name}")
        if (match := patch_re.fullmatch(path.parent.parent.name))
    ]
    candidates += [path for _, path in sorted(installed, reverse=True)]
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        candidates.append(sys.executable)
    for candidate in candidates:
        if python := working_python(candidate, version):
            return python
    return None


def test(pytest_args: Sequence[str]) -> None:
    """Run every test env of tox.ini that has an interpreter here, then lint, type and docs.

    tox finds interpreters on PATH, where a pyenv shim of a version that is installed
    but not selected does not work; so the directories of the interpreters found here
    (pyenv's included) go first on tox's PATH. Test envs without one are named loudly
    and still handed to tox, whose summary then lists them as skipped.
    """
    python = venv_python()
    ensure_installed(python, "tox", ["tox>=4.11"])
    # "3.12" for each test env of tox.ini, in tox.ini's order.
    test_envs = {
        env: f"{match.group(1)}.{match.group(2)}"
        for env in tox_envs(python)
        if (match := TEST_ENV_RE.fullmatch(env))
    }
    pythons: dict[str, Path | None] = {}
    for version in test_envs.values():
        if version not in pythons:
            pythons[version] = find_python(version)
            say(f"python{version}: {pythons[version] or 'not found'}")
    skipped = [env for env, version in test_envs.items() if pythons[version] is None]
    if skipped:
        say("=" * 72)
        for env in skipped:
            say(f"SKIPPED: {env} (no interpreter for python{test_envs[env]} on PATH or in pyenv)")
        say("=" * 72)
    runnable = [env for env in test_envs if env not in skipped]
    if not runnable:
        sys.exit("no interpreter found for any test env of tox.ini")
    say(f"running tox envs: {', '.join([*runnable, *CHECKS_ENVS])}")
    if pytest_args:
        say(f"extra pytest arguments: {' '.join(pytest_args)}")
    env = dict(os.environ)
    dirs = dict.fromkeys(str(found.parent) for found in pythons.values() if found)
    env["PATH"] = os.pathsep.join([*dirs, env.get("PATH", "")])
    argv = [str(python), "-m", "tox", "run", "-e", ",".join([*test_envs, *CHECKS_ENVS])]
    if pytest_args:
        argv += ["--", *pytest_args]
    say("$ " + " ".join(argv))
    say(f"  with PATH starting {os.pathsep.join(dirs)}")
    sys.stdout.flush()
    os.chdir(ROOT)
    os.execve(argv[0], argv, env)  # tox's exit status becomes ours


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
