"""Rate limiting: per client, per user, per API key, and per plan."""

from django.http import JsonResponse
from django.urls import path

from django_async_cbv import AsyncRateLimitMixin, AsyncView


class SearchView(AsyncRateLimitMixin, AsyncView):
    rate_limit = ["10/s", "300/h"]  # both apply: short bursts, and a cap per hour
    rate_limit_key = "user_or_ip"  # signed-in users by account, others by address

    async def get(self, request):
        return JsonResponse({"query": request.GET.get("q", ""), "results": []})


class LoginView(AsyncRateLimitMixin, AsyncView):
    rate_limit = "5/15m"
    rate_limit_methods = ["POST"]  # showing the form is free; attempts are counted

    async def get(self, request):
        return JsonResponse({"fields": ["username", "password"]})

    async def post(self, request):
        return JsonResponse({"detail": "Wrong username or password."}, status=400)


def tenant(request):
    """Staff are not limited; everyone else shares the budget of the tenant's export."""
    if request.user.is_staff:
        return None  # None exempts the request
    return request.resolver_match.kwargs["tenant"]


class ExportView(AsyncRateLimitMixin, AsyncView):
    rate_limit = "2/m"
    rate_limit_key = tenant  # any callable taking the request; sync or async
    rate_limit_algorithm = "token_bucket"  # 2 at once, then one every 30 s

    async def get(self, request, tenant):
        return JsonResponse({"tenant": tenant, "rows": 0})


class ReportView(AsyncRateLimitMixin, AsyncView):
    rate_limit_key = "user"
    rate_limit_scope = "reports"  # one budget for every view with this scope and rate

    async def get_rate_limit(self):  # hooks may be sync or async
        if await self.request.user.ahas_perm("reports.export_many"):
            return "1000/h"
        return "20/h"

    async def get(self, request):
        return JsonResponse({"report": "ok"})


urlpatterns = [
    path("search/", SearchView.as_view()),
    path("login/", LoginView.as_view()),
    path("tenants/<slug:tenant>/export/", ExportView.as_view()),
    path("reports/", ReportView.as_view()),
]
