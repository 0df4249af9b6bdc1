"""The docs' example app: ``docs/examples/`` installed as the app ``shop``.

The JSON API and generic view examples are modules of one app whose ``models.py`` is
``docs/examples/models.py`` (they import ``from .models import Item``), so the pages
never depend on the example project. ``installed_docs_app()`` installs that app for
the duration of a test and creates its tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import AppConfig
from django.conf import settings
from django.db import connection
from django.test import override_settings


class ShopConfig(AppConfig):
    """``docs.examples`` under the label the pages use."""

    name = "docs.examples"
    label = "shop"
    default_auto_field = "django.db.models.BigAutoField"


@contextmanager
def installed_docs_app() -> Iterator[None]:
    """Install the ``shop`` app and create its tables, then undo both."""
    with override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, "tests.docs_app.ShopConfig"]):
        from docs.examples.models import Item, ItemEvent

        with connection.schema_editor() as editor:
            editor.create_model(Item)
            editor.create_model(ItemEvent)
        try:
            yield
        finally:
            with connection.schema_editor() as editor:
                editor.delete_model(ItemEvent)
                editor.delete_model(Item)
