"""request.user, and Django's view decorators applied to AsyncView.dispatch."""

import hashlib
import hmac

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.vary import vary_on_headers

from django_async_cbv import AsyncView, ProblemError


class GreetingView(AsyncView):
    async def get(self, request):
        # Already resolved by AsyncView: a real user object, no lazy database query.
        user = request.user
        name = user.get_username() if user.is_authenticated else "stranger"
        return JsonResponse({"greeting": f"Hello, {name}!"})


@method_decorator(login_required, name="dispatch")
class AccountView(AsyncView):
    async def get(self, request):
        return JsonResponse({"username": request.user.get_username()})


@method_decorator(cache_control(max_age=300, public=True), name="dispatch")
@method_decorator(vary_on_headers("Accept-Language"), name="dispatch")
class PriceListView(AsyncView):
    async def get(self, request):
        german = request.headers.get("Accept-Language", "").startswith("de")
        return JsonResponse({"green tea": "4,50 €" if german else "€4.50"})


WEBHOOK_SECRET = b"change-me"  # in a real project, read it from the environment


@method_decorator(csrf_exempt, name="dispatch")
class PaymentWebhookView(AsyncView):
    """Called by a payment provider's servers: no browser, no cookies, no CSRF token.

    The signature check takes the place of CSRF protection; never exempt a view
    that has nothing in its place.
    """

    async def post(self, request):
        expected = hmac.new(WEBHOOK_SECRET, request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Signature", "")):
            raise ProblemError(403, detail="The signature does not match.")
        return HttpResponse(status=204)


urlpatterns = [
    path("hello/", GreetingView.as_view()),
    path("account/", AccountView.as_view()),
    path("prices/", PriceListView.as_view()),
    path("webhooks/payments/", PaymentWebhookView.as_view()),
]
