"""What every page's layout shows: the demo user's credentials."""

from __future__ import annotations

from django.http import HttpRequest

from . import demo_user


def demo(request: HttpRequest) -> dict[str, object]:
    """The demo user's name and password, shown next to the sign-in link."""
    return {"demo_user": {"username": demo_user.USERNAME, "password": demo_user.PASSWORD}}
