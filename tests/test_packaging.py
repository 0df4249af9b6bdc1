"""The distribution's metadata: every import declared, every floor tested, a PEP 440 version."""

from __future__ import annotations

import ast
import configparser
import re
import sys
import tomllib
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import django_async_cbv

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "django_async_cbv"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _declared() -> list[Requirement]:
    """The runtime requirements and those of every extra."""
    lines = list(PYPROJECT["dependencies"])
    for extra in PYPROJECT["optional-dependencies"].values():
        lines += extra
    return [Requirement(line) for line in lines]


def _top_level_imports() -> dict[str, list[str]]:
    """Each top-level module that src/ imports absolutely, with the files importing it."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], []).append(str(path.relative_to(ROOT)))
    return found


def _distribution(module: str, installed: Mapping[str, list[str]]) -> str:
    """The distribution that installs ``module`` (this env has every extra installed)."""
    dists = installed.get(module)
    assert dists, f"{module} is imported by src/ but no installed distribution provides it"
    return canonicalize_name(dists[0])


def test_the_import_scan_sees_third_party_imports() -> None:
    """The scan below finds what the HTTP client imports, so it cannot pass vacuously."""
    imports = _top_level_imports()
    assert {"django", "aiohttp", "yarl", "multidict", "asgiref"} <= imports.keys()


def test_every_third_party_import_is_declared() -> None:
    """A module that src/ imports comes from a distribution pyproject.toml requires
    (directly, not only through another package: that one may drop it)."""
    declared = {canonicalize_name(req.name) for req in _declared()}
    own = {"django_async_cbv", "__future__"}
    installed = metadata.packages_distributions()
    missing = {
        module: files
        for module, files in _top_level_imports().items()
        if module not in sys.stdlib_module_names
        and module not in own
        and _distribution(module, installed) not in declared
    }
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def _floor(req: Requirement) -> Version:
    floors = [Version(spec.version) for spec in req.specifier if spec.operator == ">="]
    assert len(floors) == 1, f"{req} has no single >= floor"
    return floors[0]


def _floor_env_pins() -> dict[str, Version]:
    """The ``floor:`` pins of tox.ini's test env, by distribution."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    pins = {}
    for line in tox["testenv"]["deps"].splitlines():
        match = re.fullmatch(r"\s*floor:\s*(\S+)", line)
        if match:
            req = Requirement(match.group(1))
            (spec,) = req.specifier
            assert spec.operator == "==", f"the floor env pins exact versions, not {req}"
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def test_the_floor_env_installs_every_declared_floor() -> None:
    """tox's floor env tests exactly the lowest versions that pyproject.toml allows,
    for every dependency, the extras' included."""
    floors = {canonicalize_name(req.name): _floor(req) for req in _declared()}
    assert _floor_env_pins() == floors


def test_version_is_pep_440_and_is_the_installed_one() -> None:
    version = django_async_cbv.__version__
    assert str(Version(version)) == version
    assert metadata.version("django-async-cbv") == version


def test_the_version_is_the_newest_release_of_the_changelog() -> None:
    """CHANGELOG.md: an "Unreleased" section first, then the version being shipped."""
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[:2] == ["Unreleased", django_async_cbv.__version__]


def test_the_summary_names_every_building_block() -> None:
    """The package index's one-line summary and keywords name what the package ships."""
    summary = PYPROJECT["description"]
    for block in (
        "AsyncView",
        "JSON API",
        "caching",
        "rate limiting",
        "circuit breaker",
        "HTTP client",
        "generic views",
    ):
        assert block in summary
        assert block.lower() in PYPROJECT["keywords"] or block == "AsyncView"


def test_read_the_docs_builds_what_tox_builds() -> None:
    """The hosted docs (pyproject's Documentation URL) come from docs/conf.py with the
    docs requirements and the package, its redis extra included, as tox's docs env."""
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / ".readthedocs.yaml").read_text(encoding="utf-8"))
    assert config["version"] == 2
    assert config["sphinx"]["configuration"] == "docs/conf.py"
    assert (ROOT / config["sphinx"]["configuration"]).is_file()
    installs = config["python"]["install"]
    requirements = [step["requirements"] for step in installs if "requirements" in step]
    assert requirements == ["docs/requirements.txt"]
    assert (ROOT / requirements[0]).is_file()
    (package,) = [step for step in installs if step.get("method") == "pip"]
    assert package["path"] == "."
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    assert package["extra_requirements"] == tox["testenv:docs"]["extras"].split()
    assert "readthedocs.io" in PYPROJECT["urls"]["Documentation"]
