"""The list of demos shown on the index page.

Each app advertises its demos with a ``demos`` attribute on its ``AppConfig``::

    class ShopConfig(AppConfig):
        name = "shop"
        demos = [Demo("shop:list", "Shop", "One line saying what it shows.")]

A plain ``(url_name, title, description)`` tuple works too. The index lists them in
``INSTALLED_APPS`` order, so adding an app is all it takes to add its demos.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from django.apps import apps
from django.urls import reverse


class Demo(NamedTuple):
    """One entry of the index page."""

    url_name: str
    title: str
    description: str

    @property
    def url(self) -> str:
        return reverse(self.url_name)


def installed_demos() -> Iterator[Demo]:
    """Yield the demos of every installed app, in ``INSTALLED_APPS`` order."""
    for app_config in apps.get_app_configs():
        for entry in getattr(app_config, "demos", ()):
            yield entry if isinstance(entry, Demo) else Demo(*entry)
