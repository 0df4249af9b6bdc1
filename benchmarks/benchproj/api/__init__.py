"""One module per framework of the ``api`` scenario.

Every module serves the same three endpoints at the same paths, with the same
JSON fields, and defines ``urlpatterns`` so it can be a server's ROOT_URLCONF:

- ``GET  /items/``            first page of 20, ``{"count", "next", "previous", "results"}``
- ``POST /items/``            create from a JSON object, 201 + the object
- ``GET  /items/<int:pk>/``   one object

Objects: ``id, name, description, price (string), quantity, is_active, created_at (ISO 8601)``.
"""

FIELDS = ("id", "name", "description", "price", "quantity", "is_active", "created_at")
WRITABLE = ("name", "description", "price", "quantity", "is_active")
PAGE_SIZE = 20


def acbv_available() -> bool:
    """Whether this version of django_async_cbv provides AsyncAPIView."""
    try:
        from django_async_cbv import AsyncAPIView  # noqa: F401
    except ImportError:
        return False
    return True
