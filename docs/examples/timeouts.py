"""Handler timeouts: a class attribute, a per-request hook, and sync handlers."""

import asyncio
import time

from django.http import HttpResponse, JsonResponse
from django.urls import path

from django_async_cbv import AsyncView


async def build_report(*, full: bool) -> dict:
    await asyncio.sleep(0.01)  # stands in for slow queries or upstream calls
    return {"full": full, "rows": 3}


class ReportView(AsyncView):
    timeout = 2.0  # seconds; then the handler is cancelled and the client gets 504

    def get_timeout(self):
        # Staff may ask for the full report, which is allowed to take longer.
        # request.user is already resolved here, so reading it costs no query.
        if self.request.GET.get("full") == "1" and self.request.user.is_staff:
            return 30.0
        return super().get_timeout()

    async def get(self, request):
        full = request.GET.get("full") == "1" and request.user.is_staff
        return JsonResponse(await build_report(full=full))


def export_rows() -> list[list[str]]:
    time.sleep(0.01)  # stands in for a blocking library or a long ORM query
    return [["id", "name"], ["1", "Ada"]]


class ExportView(AsyncView):
    timeout = 10.0

    def get(self, request):
        # Sync handler: it runs in a thread, which nothing can interrupt. At the
        # timeout the client gets its 504 at once; the thread runs on to the end
        # in the background and its response is thrown away.
        rows = export_rows()
        body = "".join(",".join(row) + "\r\n" for row in rows)
        return HttpResponse(body, content_type="text/csv")


urlpatterns = [
    path("report/", ReportView.as_view()),
    path("export.csv", ExportView.as_view()),
]
