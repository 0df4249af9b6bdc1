"""Calling upstream services through circuit breakers."""

from django.http import JsonResponse
from django.urls import path

from django_async_cbv import (
    AsyncCircuitBreakerMixin,
    AsyncView,
    CircuitBreaker,
    CircuitOpenError,
    UpstreamError,
)


class RatesService:
    """Stands in for a real exchange-rate service called over the network."""

    rates = {"EUR": 1.0, "NOK": 11.6}
    down = False

    async def fetch(self, currency):
        if self.down:
            raise UpstreamError("the rates service answered 503", status=503)
        return self.rates[currency]


rates_service = RatesService()

# A breaker made in code: three failures in a row open it for 10 seconds. A KeyError
# (an unknown currency) means the service answered, so it is no failure.
rates_breaker = CircuitBreaker(
    "exchange-rates",
    failure_threshold=3,
    recovery_timeout=10,
    timeout=2,
    failure_exceptions=(UpstreamError, TimeoutError, OSError),
)


@rates_breaker
async def fetch_rate(currency):
    return await rates_service.fetch(currency)


class PriceView(AsyncView):
    """Degrades instead of failing: without a rate, prices are shown in euros."""

    async def get(self, request, amount):
        currency = request.GET.get("currency", "EUR")
        try:
            rate = await fetch_rate(currency)
        except (CircuitOpenError, UpstreamError):
            return JsonResponse({"amount": amount, "currency": "EUR", "converted": False})
        return JsonResponse({"amount": amount * rate, "currency": currency, "converted": True})


class PaymentsService:
    """Stands in for a payment provider."""

    down = False

    async def charge(self, order_id):
        if self.down:
            raise UpstreamError("the payment provider answered 502", status=502)
        return {"order": order_id, "charged": True}


payments = PaymentsService()


class ChargeView(AsyncCircuitBreakerMixin, AsyncView):
    """The whole handler runs through the "payments" breaker of the settings."""

    circuit_breaker = "payments"

    async def post(self, request, order_id):
        return JsonResponse(await payments.charge(order_id))


urlpatterns = [
    path("prices/<int:amount>/", PriceView.as_view()),
    path("orders/<int:order_id>/charge/", ChargeView.as_view()),
]
