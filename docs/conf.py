"""Sphinx configuration for the django-async-cbv documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import django
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
# Import the package from the checkout, installed or not.
sys.path.insert(0, str(ROOT / "src"))

# autodoc imports the package, which imports Django models and settings: give
# Django the least configuration it needs before anything is imported.
if not settings.configured:
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django_async_cbv",
        ],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

import django_async_cbv  # noqa: E402 - needs the settings above

project = "django-async-cbv"
author = "django-async-cbv contributors"
copyright = "django-async-cbv contributors"
release = django_async_cbv.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples", "requirements.txt"]

# MyST: "[text](page.md#section)" links to headings down to level 3.
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": True}

pygments_style = "sphinx"
pygments_dark_style = "monokai"
html_theme = "furo"
html_title = f"django-async-cbv {release}"
html_static_path: list[str] = []


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Leave private base classes (internal layout, such as ``CircuitBreaker``'s) out of
    "Bases:"; a class with only private bases shows ``object``, as before it had them."""
    if any(base.__name__.startswith("_") for base in bases):
        bases[:] = [base for base in bases if not base.__name__.startswith("_")] or [object]


def setup(app: object) -> None:
    app.connect("autodoc-process-bases", _public_bases)  # type: ignore[attr-defined]
