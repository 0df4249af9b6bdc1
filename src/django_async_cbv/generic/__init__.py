"""Async generic views for templates, and async access mixins.

The async twins of Django's generic views, built on :class:`~django_async_cbv.AsyncView`:
the same attributes and template names, with ``async def`` hooks (``get_queryset``,
``get_object``, ``get_context_data``, ``get_form_kwargs``, ``form_valid``,
``form_invalid``, ``get_success_url``…; a plain ``def`` override runs in a worker
thread), the async ORM, and templates rendered on the event loop.

=============  ===============================================================
``base``       ``AsyncTemplateView``, ``AsyncRedirectView``, rendering on the loop
``list``       ``AsyncListView`` and its pagination (``pagination``)
``detail``     ``AsyncDetailView``
``edit``       ``AsyncFormView``, ``AsyncCreateView``, ``AsyncUpdateView``, ``AsyncDeleteView``
``auth``       ``AsyncLoginRequiredMixin``, ``AsyncPermissionRequiredMixin``,
               ``AsyncUserPassesTestMixin``
=============  ===============================================================
"""

from __future__ import annotations

from .auth import (
    AsyncAccessMixin,
    AsyncLoginRequiredMixin,
    AsyncPermissionRequiredMixin,
    AsyncUserPassesTestMixin,
)
from .base import AsyncRedirectView, AsyncTemplateView, ContextMixin, TemplateResponseMixin
from .detail import (
    AsyncDetailView,
    BaseDetailView,
    SingleObjectMixin,
    SingleObjectTemplateResponseMixin,
)
from .edit import (
    AsyncCreateView,
    AsyncDeleteView,
    AsyncFormView,
    AsyncUpdateView,
    BaseCreateView,
    BaseDeleteView,
    BaseFormView,
    BaseUpdateView,
    FormMixin,
    ModelFormMixin,
    ProcessFormView,
)
from .list import (
    AsyncListView,
    BaseListView,
    MultipleObjectMixin,
    MultipleObjectTemplateResponseMixin,
)

__all__ = [
    "AsyncAccessMixin",
    "AsyncCreateView",
    "AsyncDeleteView",
    "AsyncDetailView",
    "AsyncFormView",
    "AsyncListView",
    "AsyncLoginRequiredMixin",
    "AsyncPermissionRequiredMixin",
    "AsyncRedirectView",
    "AsyncTemplateView",
    "AsyncUpdateView",
    "AsyncUserPassesTestMixin",
    "BaseCreateView",
    "BaseDeleteView",
    "BaseDetailView",
    "BaseFormView",
    "BaseListView",
    "BaseUpdateView",
    "ContextMixin",
    "FormMixin",
    "ModelFormMixin",
    "MultipleObjectMixin",
    "MultipleObjectTemplateResponseMixin",
    "ProcessFormView",
    "SingleObjectMixin",
    "SingleObjectTemplateResponseMixin",
    "TemplateResponseMixin",
]
