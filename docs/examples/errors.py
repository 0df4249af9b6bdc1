"""Problem details: ProblemError, problem_response() and handle_exception()."""

from django.http import Http404, JsonResponse
from django.urls import path

from django_async_cbv import AsyncView, ProblemError, problem_response

STOCK = {"tea": 3, "cocoa": 0}
ORDERING_PAUSED = False  # e.g. a feature flag read from settings


class OutOfStock(Exception):
    def __init__(self, sku: str, available: int) -> None:
        super().__init__(f"{sku}: only {available} left")
        self.sku = sku
        self.available = available


def reserve(sku: str, quantity: int) -> None:
    if sku not in STOCK:
        raise Http404(f"No product with SKU {sku!r} in table shop_product")
    if quantity > STOCK[sku]:
        raise OutOfStock(sku, STOCK[sku])
    STOCK[sku] -= quantity


class OrderView(AsyncView):
    async def post(self, request, sku):
        if ORDERING_PAUSED:
            problem = ProblemError(503, detail="Ordering is paused for maintenance.")
            problem.headers["Retry-After"] = "300"
            raise problem
        quantity = request.POST.get("quantity", "")
        if not quantity.isdecimal() or int(quantity) < 1:
            raise ProblemError(
                400,
                detail="The order is not valid.",
                errors={"quantity": ["Enter a whole number of at least 1."]},
            )
        reserve(sku, int(quantity))
        return JsonResponse({"sku": sku, "quantity": int(quantity)}, status=201)

    async def handle_exception(self, exc):
        if isinstance(exc, OutOfStock):
            return problem_response(
                409,
                detail=f"Only {exc.available} of {exc.sku!r} left.",
                type="https://shop.example/problems/out-of-stock",
                available=exc.available,
            )
        if isinstance(exc, Http404):
            # The exception's text is for the logs; the client gets a plain 404.
            return problem_response(404, detail="There is no such product.")
        # Everything else: the library's mappings, then Django's own handling.
        return await super().handle_exception(exc)


urlpatterns = [path("products/<slug:sku>/orders/", OrderView.as_view())]
