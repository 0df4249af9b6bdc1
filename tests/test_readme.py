"""The README: its code is the tested code of docs/examples, and its links work anywhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_every_readme_python_block_is_a_tested_docs_example() -> None:
    """Each Python block (after its file-name comment) stands verbatim in docs/examples/."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = _python_blocks(readme)
    assert blocks, "the README shows no Python: the quickstart is missing"
    examples = [p.read_text(encoding="utf-8") for p in (ROOT / "docs" / "examples").glob("*.py")]
    for block in blocks:
        code = re.sub(r"\A# [\w/.]+\n", "", block)  # "# app/views.py" names the user's file
        assert any(code in example for example in examples), f"untested README code:\n{block}"


#: Markdown links and images ``[text](target)``, autolinks ``<target>`` and reference
#: definitions ``[label]: target``.
_LINK_TARGETS = re.compile(
    r"\]\(\s*<?([^)\s>]+)"  # [text](target) and ![alt](target)
    r"|<((?:[a-z][a-z0-9+.-]*:|/|\.|#)[^>\s]*)>"  # <https://...>, and relative ones
    r"|^\s*\[[^\]]+\]:\s*<?(\S+?)>?\s*$",  # [label]: target
    flags=re.IGNORECASE | re.MULTILINE,
)


def _link_targets(text: str) -> list[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code blocks hold no links
    text = re.sub(r"`[^`\n]*`", "", text)  # nor does inline code
    return [next(g for g in m.groups() if g) for m in _LINK_TARGETS.finditer(text)]


def test_link_targets_are_found() -> None:
    """The link finder sees every kind of link, so the test below cannot pass vacuously."""
    text = "[a](docs/) ![i](img.png) <https://x.org/> `[no](code)`\n[r]: LICENSE\n"
    assert _link_targets(text) == ["docs/", "img.png", "https://x.org/", "LICENSE"]


def test_readme_links_are_absolute() -> None:
    """The README is the package index's project page, where a relative link is broken."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = _link_targets(readme)
    assert targets, "the README links nowhere: the link finder is broken"
    relative = [t for t in targets if not re.match(r"https?://", t)]
    assert not relative, f"relative links in README.md (use https://github.com/...): {relative}"
