"""The README's code is the tested code of docs/examples, so it cannot rot."""

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
