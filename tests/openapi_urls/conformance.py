"""Views whose documents are checked against what the server accepts and answers."""

from __future__ import annotations

from django.urls import URLPattern, path

from django_async_cbv import AsyncAPIView, AsyncCircuitBreakerMixin, AsyncRateLimitMixin
from django_async_cbv.breaker import CircuitBreaker
from tests.models import Ticket, Widget

#: The pk and every other concrete field of Ticket.
TICKET_FIELDS = ["pk", *(f.name for f in Ticket._meta.concrete_fields if f.name != "id")]


class TicketAPI(AsyncAPIView):
    """Filters on fields of every kind, with their default lookups."""

    model = Ticket
    filter_fields = TICKET_FIELDS
    search_fields = ["title", "email"]
    ordering_fields = ["priority", "due"]
    paginate_by = 10


class TicketLookupsAPI(AsyncAPIView):
    """Filters with the lookups they name, and cursor pages."""

    model = Ticket
    filter_fields = {
        "priority": ["exact", "gte", "lt"],
        "rate": ["lte"],
        "status": ["in"],
        "due": ["gt"],
        "category": ["exact"],
    }
    pagination = "cursor"


class SearchOnlyAPI(AsyncAPIView):
    """Search and nothing else: no filters, no ordering, every result."""

    model = Ticket
    search_fields = ["title"]
    paginate_by = None


class LimitedTicketAPI(AsyncRateLimitMixin, AsyncAPIView):
    model = Ticket
    rate_limit = "1000/m"
    rate_limit_methods = ["GET"]


class WidgetAPI(AsyncAPIView):
    model = Widget


class GuardedWidgetAPI(AsyncCircuitBreakerMixin, AsyncAPIView):
    """Behind a breaker that opens after one upstream failure and bounds each call."""

    model = Widget
    circuit_breaker = CircuitBreaker(
        "conformance-guarded", failure_threshold=1, recovery_timeout=60, timeout=5
    )


class ChosenBreakerWidgetAPI(GuardedWidgetAPI):
    """Chooses its breaker per request (from a header): unknown without one."""

    def get_circuit_breaker(self) -> CircuitBreaker:
        name = self.request.headers.get("X-Upstream", "main")
        return CircuitBreaker(f"conformance-{name}", timeout=3)


class NamedBreakerWidgetAPI(AsyncCircuitBreakerMixin, AsyncAPIView):
    """A breaker from settings, which has no timeout by default."""

    model = Widget
    circuit_breaker = "conformance-named"


urlpatterns: list[URLPattern] = [
    path("tickets/", TicketAPI.as_view()),
    path("tickets/<int:pk>/", TicketAPI.as_view()),
    path("lookups/", TicketLookupsAPI.as_view()),
    path("narrowed/", TicketAPI.as_view(filter_fields=["priority", "at", "tag"], paginate_by=None)),
    path("search/", SearchOnlyAPI.as_view()),
    path("limited/", LimitedTicketAPI.as_view()),
    path("limited/<int:pk>/", LimitedTicketAPI.as_view()),
    path("widgets/", WidgetAPI.as_view()),
    path("widgets/<int:pk>/", WidgetAPI.as_view()),
    path("guarded/", GuardedWidgetAPI.as_view()),
    path("guarded/<int:pk>/", GuardedWidgetAPI.as_view()),
    path("chosen/", ChosenBreakerWidgetAPI.as_view()),
    path("named/", NamedBreakerWidgetAPI.as_view()),
]
