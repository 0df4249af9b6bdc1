"""docs/checks.md documents every check id the code emits, and no other."""

from __future__ import annotations

import re
from pathlib import Path

import django_async_cbv

SRC = Path(django_async_cbv.__file__).resolve().parent
DOCS = Path(__file__).resolve().parent.parent / "docs"
ID = re.compile(r"django_async_cbv\.([EW]\d{3})\b")


def emitted_ids() -> set[str]:
    """The ids written in the package's source (every check message names its id there)."""
    return {m for file in SRC.rglob("*.py") for m in ID.findall(file.read_text("utf-8"))}


def documented_sections() -> dict[str, str]:
    """The text under each ``### `django_async_cbv.X000``` heading of docs/checks.md."""
    text = (DOCS / "checks.md").read_text(encoding="utf-8")
    parts = re.split(r"^### `django_async_cbv\.([EW]\d{3})`\n", text, flags=re.MULTILINE)
    sections = {}
    for check_id, body in zip(parts[1::2], parts[2::2], strict=True):
        assert check_id not in sections, f"{check_id} is documented twice"
        sections[check_id] = body.split("\n## ")[0]
    return sections


def test_every_emitted_id_is_documented_and_every_documented_id_is_emitted() -> None:
    emitted = emitted_ids()
    assert len(emitted) >= 16  # the scan finds the ids
    assert set(documented_sections()) == emitted


def test_every_id_has_a_cause_and_a_fix() -> None:
    for check_id, body in documented_sections().items():
        assert "\nCause: " in "\n" + body, check_id
        assert "\nFix: " in body, check_id


def test_the_page_is_in_the_table_of_contents_and_installation_links_it() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    toctree = index[index.index("```{toctree}") :]
    assert "\nchecks\n" in toctree[: toctree.index("\n```", 3)]
    assert "(checks.md)" in (DOCS / "installation.md").read_text(encoding="utf-8")
