"""JSON APIs over Django models: ``AsyncAPIView`` and the pieces it is made of.

=================  ==============================================================
``routing``        the route (list or detail) and the action of a request
``access``         ``authenticate()``, CSRF for session users, permissions
``objects``        the queryset, object lookup and serialization
``filtering``      ``filter_fields``, ``search_fields``, ``ordering_fields``, compiled
``cursor``         signed ``?cursor=`` positions and keyset pages
``pagination``     the list's query string: filters, ordering, ``?page=``/``?cursor=``
``writes``         forms, ``perform_*`` hooks, one transaction per write
``conditional``    ``ETag``, ``If-None-Match`` → 304, ``If-Match`` → 412, 428
``input``          JSON values checked and shaped for a form
``base``           ``AsyncGenericAPIView``: the base, without actions
``actions``        ``ListMixin`` … ``DestroyMixin``: one action each
``views``          ``AsyncAPIView``, ``AsyncReadOnlyAPIView``: the base with actions
=================  ==============================================================
"""

from __future__ import annotations

from .actions import CreateMixin, DestroyMixin, ListMixin, RetrieveMixin, UpdateMixin
from .views import AsyncAPIView, AsyncGenericAPIView, AsyncReadOnlyAPIView

__all__ = [
    "AsyncAPIView",
    "AsyncGenericAPIView",
    "AsyncReadOnlyAPIView",
    "CreateMixin",
    "DestroyMixin",
    "ListMixin",
    "RetrieveMixin",
    "UpdateMixin",
]
