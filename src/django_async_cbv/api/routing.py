"""Routing an API request to an action by route (list or detail) and method.

One view class serves ``items/`` (the list route) and ``items/<pk>/`` (the detail
route). A method maps to an action only where the class has that action (see the
action mixins), so a read-only view answers POST with 405 and leaves it out of
``Allow``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.http import HttpRequest, HttpResponse

from django_async_cbv._util import library_answer

if TYPE_CHECKING:
    from django_async_cbv.views import AsyncView

    _Base = AsyncView
else:
    _Base = object

__all__ = ["DETAIL_ROUTE", "LIST_ROUTE", "RoutingMixin"]

#: Method → action on the list route and on the detail route.
LIST_ROUTE: Mapping[str, str] = {"get": "list", "head": "list", "post": "create"}
DETAIL_ROUTE: Mapping[str, str] = {
    "get": "retrieve",
    "head": "retrieve",
    "put": "update",
    "patch": "partial_update",
    "delete": "destroy",
}


def _present(cls: type, route: Mapping[str, str]) -> dict[str, str]:
    return {method: action for method, action in route.items() if hasattr(cls, action)}


class RoutingMixin(_Base):
    """Pick the route and the action for each request."""

    #: The action routed for this request ("list", "create", ...), or None.
    action: str | None = None
    #: Whether the request came in on the detail route.
    detail: bool = False

    # Per class: the routes restricted to the actions the class has.
    _list_route: ClassVar[Mapping[str, str]] = {}
    _detail_route: ClassVar[Mapping[str, str]] = {}

    get_lookup_url_kwarg: Callable[[], str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._list_route = _present(cls, LIST_ROUTE)
        cls._detail_route = _present(cls, DETAIL_ROUTE)

    def _route_actions(self) -> Mapping[str, str]:
        """Return method → action for this request's route."""
        return self._detail_route if self.detail else self._list_route

    def _route_request(self, request: HttpRequest, kwargs: Mapping[str, Any]) -> None:
        """Set ``detail`` and ``action`` for ``request``.

        ``action`` names the method that answers: the route's action for the
        HTTP method, else the view's handler named after the method (``options``,
        or one of the view's own, e.g. a ``post()`` on the detail route). It is
        None only for a method the view does not answer (405): every other
        request goes through the access checks.
        """
        self.detail = self.get_lookup_url_kwarg() in kwargs
        method = (request.method or "").lower()
        action = None
        if method in self.http_method_names:
            action = self._route_actions().get(method)
            if action is None and callable(getattr(self, method, None)):
                action = method
        self.action = action

    def get_handler(self, request: HttpRequest) -> Callable[..., Any]:
        """Return the handler of the routed action, or the 405 answer."""
        if self.action is not None:
            return getattr(self, self.action)  # type: ignore[no-any-return]
        return super().get_handler(request)

    def _allowed_methods(self) -> list[str]:
        route = self._route_actions()
        allowed = [m for m in self.http_method_names if m in route or m == "options"]
        allowed += [
            m
            for m in self.http_method_names
            if m not in route and m != "options" and hasattr(self, m)
        ]
        return [m.upper() for m in allowed]

    @library_answer
    async def options(  # type: ignore[override]  # async by design
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """Answer OPTIONS with the route's methods and the body media type it accepts."""
        response = await super().options(request, *args, **kwargs)
        allowed = self._allowed_methods()
        if "POST" in allowed and not self.detail:
            response.headers["Accept-Post"] = "application/json"
        if "PATCH" in allowed and self.detail:
            response.headers["Accept-Patch"] = "application/json"
        return response
