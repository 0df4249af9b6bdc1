"""The API reference cannot rot: every public member and every setting is in it.

docs/reference.md has, after each public class, a line ``Members of `Name```
(optionally ``(inherits from `A`, `B`)``) and a table of the members the class
defines or overrides: name, kind, contract. These tests introspect every public
class (the ``__all__`` of the package and of its public modules) and fail when a
public member is missing, when a method is not marked as a hook or an API method,
when the table says sync for an async method (or the reverse), and when a key the
settings code reads is missing from the settings tables.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from asgiref.sync import iscoroutinefunction

from django_async_cbv import conf

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference.md"
PACKAGE = "django_async_cbv"


def public_modules() -> list[str]:
    """The package and its modules whose names do not start with "_": their
    ``__all__`` is the public API (what lies below them is layout)."""
    package = importlib.import_module(PACKAGE)
    return [PACKAGE] + [
        f"{PACKAGE}.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    ]


HEAD = re.compile(
    r"^Members of `(\w+)`(?: \(inherits from ((?:`\w+`(?:, )?)+)\))?:(?: none of its own\.)?$"
)
ROW = re.compile(r"^\| `(\w+)` \| ([^|]+) \| (.*) \|$")
METHOD_KINDS = re.compile(r"^(hook|API), (sync|async)(, classmethod)?$")
DATA_KINDS = {"attribute", "state", "property"}


@dataclass
class Section:
    inherits: list[str] = field(default_factory=list)
    rows: dict[str, str] = field(default_factory=dict)  # member -> kind


def public_classes() -> dict[str, type]:
    classes: dict[str, type] = {}
    for name in public_modules():
        module = importlib.import_module(name)
        for export in getattr(module, "__all__", ()):
            obj = getattr(module, export)
            if inspect.isclass(obj):
                assert classes.get(obj.__name__, obj) is obj, f"two public classes {obj.__name__}"
                classes[obj.__name__] = obj
    return classes


def owner(cls: type, name: str) -> type:
    return next(klass for klass in cls.__mro__ if name in vars(klass))


def public_members(cls: type) -> list[str]:
    """``dir()`` names without "_" whose definition is the library's (not Django's,
    not Python's): what Django's own classes define is documented by Django."""
    return [
        name
        for name in dir(cls)
        if not name.startswith("_") and owner(cls, name).__module__.startswith(PACKAGE)
    ]


def sections() -> dict[str, Section]:
    found: dict[str, Section] = {}
    current: Section | None = None
    for line in REFERENCE.read_text().splitlines():
        if match := HEAD.match(line):
            assert match.group(1) not in found, f"two member tables for {match.group(1)}"
            current = found[match.group(1)] = Section(re.findall(r"`(\w+)`", match.group(2) or ""))
        elif current is not None and (row := ROW.match(line)):
            current.rows[row.group(1)] = row.group(2).strip()
        elif current is not None and line.startswith("```"):
            current = None
    return found


CLASSES = public_classes()
SECTIONS = sections()


def test_the_scan_sees_the_api() -> None:
    """The introspection and the page parser find what they must (so the tests can fail)."""
    assert {f"{PACKAGE}.{name}" for name in ("api", "generic", "openapi", "redis_cluster")} <= set(
        public_modules()
    )
    assert {"AsyncView", "AsyncAPIView", "AsyncGenericAPIView", "OpenAPIView"} <= set(CLASSES)
    assert "ClusterClient" in CLASSES
    assert {"authenticate", "has_permission", "perform_create"} <= set(
        public_members(CLASSES["AsyncAPIView"])
    )
    # Django's own View.setup is documented by Django; AsyncGenericAPIView overrides it.
    assert "setup" not in public_members(CLASSES["AsyncView"])
    assert "setup" in public_members(CLASSES["AsyncGenericAPIView"])
    assert SECTIONS["AsyncView"].rows["handle_exception"] == "hook, async"


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_public_member_is_documented(name: str) -> None:
    """Each member is in the class's table, or in the table of a class it names in
    "inherits from" (and that class really is a base defining it)."""
    cls = CLASSES[name]
    members = public_members(cls)
    if not members:
        return
    assert name in SECTIONS, f"docs/reference.md has no 'Members of `{name}`' table"
    section = SECTIONS[name]
    for base in section.inherits:
        assert base in CLASSES, f"{name} inherits {base}, which is not a public class"
        assert issubclass(cls, CLASSES[base]), f"{name} does not inherit {base}"
    missing = []
    for member in members:
        if member in section.rows:
            continue
        defined_in = owner(cls, member)
        homes = [
            base
            for base in section.inherits
            if member in SECTIONS.get(base, Section()).rows
            and owner(CLASSES[base], member) is defined_in
        ]
        if not homes:
            missing.append(member)
    assert not missing, f"{name}: not in docs/reference.md: {', '.join(missing)}"


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_documented_members_exist_and_kinds_are_right(name: str) -> None:
    """No stale row; a method is a hook or an API method, sync or async as the code is."""
    assert name in CLASSES, f"a member table for {name}, which is not a public class"
    cls = CLASSES[name]
    problems = []
    for member, kind in SECTIONS[name].rows.items():
        if member.startswith("_") or not hasattr(cls, member):
            problems.append(f"{member}: no such public member")
            continue
        value = inspect.getattr_static(owner(cls, member), member)
        function = getattr(value, "__func__", value)
        if isinstance(value, property) or type(value).__name__ == "classproperty":
            ok = kind in ("property", "API, sync")
        elif inspect.isfunction(function) or isinstance(value, classmethod):
            match = METHOD_KINDS.match(kind)
            is_classmethod = isinstance(value, classmethod)  # classonlymethod included
            ok = bool(
                match
                and (match.group(2) == "async") == iscoroutinefunction(function)
                and bool(match.group(3)) == is_classmethod
            )
        else:
            ok = kind in DATA_KINDS
        if not ok:
            problems.append(f"{member}: kind {kind!r} does not fit {value!r}")
    assert not problems, f"{name}: " + "; ".join(problems)


def _keys_read_by_conf() -> set[str]:
    """Every string key conf.py looks up in the raw setting (``raw[...]``,
    ``raw.get(...)``, ``options[...]``, ``options.get(...)``) or lists as a default."""
    tree = ast.parse(Path(conf.__file__).read_text())
    keys = set(conf.DEFAULTS) | set(conf.BREAKER_DEFAULTS)
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            key = node.args[0].value
        else:
            continue
        if isinstance(key, str) and re.fullmatch(r"[A-Z_]+|[a-z_]+", key):
            keys.add(key)
    return keys


def _settings_tables() -> dict[str, str]:
    """Key -> default of the rows of the two tables of the Settings section."""
    text = REFERENCE.read_text()
    settings = text[text.index("\n## Settings\n") :]
    return dict(re.findall(r"^\| `(\w+)` \| (`[^`]*`) \|", settings, re.M))


def test_every_setting_key_is_in_the_settings_tables() -> None:
    documented = _settings_tables()
    read = _keys_read_by_conf()
    assert {"CIRCUIT_BREAKERS", "storage", "failure_threshold"} <= read
    # The keys conf.py reads for its own purposes, not user settings.
    read -= {"BACKEND"}
    assert read - set(documented) == set()


def test_settings_defaults_match_the_code() -> None:
    documented = _settings_tables()
    defaults = {**conf.DEFAULTS, **conf.BREAKER_DEFAULTS}
    for key, value in defaults.items():
        shown = documented[key].strip("`")
        assert ast.literal_eval(shown.replace("true", "True")) == value, key
