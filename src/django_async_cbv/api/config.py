"""The class-level configuration of an API view: validated once, then cached.

``build_config`` checks every attribute (class attributes, or ``as_view()``
keyword arguments), raising ``ImproperlyConfigured`` that names the view class,
the attribute and the fix, and precomputes the model's schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models.manager import BaseManager
from django.forms import BaseModelForm

from django_async_cbv._validation import is_whole

from .cursor import cursor_keys
from .filtering import QueryPlan, compile_query
from .input import get_input_plan
from .schema import get_schema, model_field_names, natural_key

__all__ = ["CONFIG_ATTRS", "PAGINATION_STYLES", "Config", "build_config", "overrides"]

#: The values of ``pagination``.
PAGINATION_STYLES = ("page", "cursor")

#: The attributes whose values shape the configuration.
CONFIG_ATTRS = frozenset(
    {
        "model",
        "queryset",
        "fields",
        "read_only_fields",
        "form_class",
        "lookup_field",
        "lookup_url_kwarg",
        "paginate_by",
        "max_paginate_by",
        "ordering",
        "require_if_match",
        "pagination",
        "filter_fields",
        "search_fields",
        "ordering_fields",
    }
)


@dataclass(frozen=True, slots=True)
class Config:
    """A view class's validated, precomputed configuration."""

    model: type[models.Model] | None  # None: only get_queryset() knows it
    fields: tuple[str, ...] | None  # the class's ``fields``
    read_only_fields: tuple[str, ...]
    query: QueryPlan | None = None  # None: only get_queryset() knows the model
    pagination: str = "page"
    paginated: bool = True  # paginate_by is not None


def overrides(cls: type, base: type, name: str) -> bool:
    """Return whether ``cls`` overrides ``base``'s attribute ``name``."""
    return getattr(cls, name) is not getattr(base, name)


def _positive_int_or_none(owner: str, attr: str, value: object) -> int | None:
    if value is None:
        return None
    if not (is_whole(value) and value >= 1):
        raise ImproperlyConfigured(
            f"{owner}.{attr} must be None or a whole number of at least 1, not {value!r}."
        )
    return value


def _check_lookup(owner: str, attr: str, model: type[models.Model], name: str) -> None:
    base = name.lstrip("-").split("__", 1)[0]
    if base == "pk":
        return
    try:
        model._meta.get_field(base)
    except FieldDoesNotExist:
        valid = ", ".join(["pk", *model_field_names(model)])
        raise ImproperlyConfigured(
            f"{owner}.{attr} names {name!r}, but {model._meta.label} has no field "
            f"{base!r}. Valid names: {valid}."
        ) from None


def _check_creatable_key(owner: str, model: type[models.Model], writable: tuple[str, ...]) -> None:
    """A key the client must choose (no auto id, no default) has to be writable to create.

    That is the model's primary key, or a parent's in multi-table inheritance.
    """
    for key in model._meta.concrete_fields:
        chosen_by_client = (
            key.primary_key
            and natural_key(key)
            and not (key.has_default() or getattr(key, "has_db_default", bool)())
        )
        if chosen_by_client and key.name not in writable:
            raise ImproperlyConfigured(
                f"{owner} creates {model._meta.label} objects, whose primary key "
                f"{key.name!r} has no default, but {owner}.fields does not name it (or "
                "read_only_fields does): every create would store an empty key. Add "
                f"{key.name!r} to fields, or leave the create action out of the view."
            )


def build_config(cls: type, base: type, initkwargs: Mapping[str, Any]) -> Config:
    """Validate ``cls`` (a subclass of ``base``) with ``initkwargs``; return its Config."""
    owner = cls.__qualname__

    def attr(name: str) -> Any:
        return initkwargs[name] if name in initkwargs else getattr(cls, name)

    model, queryset = attr("model"), attr("queryset")
    if model is not None and not (isinstance(model, type) and issubclass(model, models.Model)):
        raise ImproperlyConfigured(f"{owner}.model must be a model class, not {model!r}.")
    if queryset is not None:
        if not isinstance(queryset, models.QuerySet | BaseManager):
            raise ImproperlyConfigured(
                f"{owner}.queryset must be a QuerySet (e.g. Item.objects.all()), not {queryset!r}."
            )
        if model is not None and not issubclass(queryset.model, model):
            raise ImproperlyConfigured(
                f"{owner}.queryset is a queryset of {queryset.model._meta.label}, "
                f"but {owner}.model is {model._meta.label}; set only one of them."
            )
        model = queryset.model
    elif overrides(cls, base, "get_model"):
        model = None  # get_model() may answer per request: learned from the queryset
    if model is None and not (
        overrides(cls, base, "get_queryset") or overrides(cls, base, "get_model")
    ):
        raise ImproperlyConfigured(
            f"{owner} requires either 'model' or 'queryset', or an implementation of "
            "get_queryset()."
        )
    fields, read_only = attr("fields"), attr("read_only_fields")
    for name, value in (("fields", fields), ("read_only_fields", read_only)):
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        if not ok and not (name == "fields" and value is None):
            raise ImproperlyConfigured(
                f"{owner}.{name} must be a list or tuple of field names, not {value!r}."
            )
    schema = None
    if model is not None:
        schema = get_schema(
            owner, model, None if fields is None else tuple(fields), tuple(read_only)
        )
        get_input_plan(schema.form_class)  # built now, not on the first write
    form_class = attr("form_class")
    if schema is not None and form_class is None and hasattr(cls, "create"):
        _check_creatable_key(owner, schema.model, schema.writable)
    if form_class is not None:
        if not (isinstance(form_class, type) and issubclass(form_class, BaseModelForm)):
            raise ImproperlyConfigured(
                f"{owner}.form_class must be a ModelForm subclass, not {form_class!r}."
            )
        # forms.ModelForm itself has no _meta at all; a subclass without a Meta
        # has one whose model is None. Neither can validate a write.
        form_model = getattr(getattr(form_class, "_meta", None), "model", None)
        if form_model is None:
            raise ImproperlyConfigured(
                f"{owner}.form_class {form_class.__name__} has no Meta.model; give it a "
                "Meta with the model and its fields (or leave form_class unset to use "
                "the default form)."
            )
        if model is not None and not issubclass(model, form_model):
            raise ImproperlyConfigured(
                f"{owner}.form_class {form_class.__name__} is a form for {form_model}, "
                f"not for {model._meta.label}."
            )
        form_fields = form_class.base_fields  # type: ignore[attr-defined]
        clash = sorted(set(form_fields) & set(read_only))
        if clash:
            raise ImproperlyConfigured(
                f"{owner}.form_class {form_class.__name__} has field(s) {', '.join(clash)} "
                "listed in read_only_fields; remove them from the form or from the list."
            )
        get_input_plan(form_class)
    lookup_field = attr("lookup_field")
    if not isinstance(lookup_field, str) or not lookup_field:
        raise ImproperlyConfigured(
            f"{owner}.lookup_field must be a field name, not {lookup_field!r}."
        )
    if model is not None:
        _check_lookup(owner, "lookup_field", model, lookup_field)
    kwarg = attr("lookup_url_kwarg")
    if kwarg is not None and (not isinstance(kwarg, str) or not kwarg):
        raise ImproperlyConfigured(
            f"{owner}.lookup_url_kwarg must be None or the name of a URL keyword argument, "
            f"not {kwarg!r}."
        )
    paginate_by = _positive_int_or_none(owner, "paginate_by", attr("paginate_by"))
    max_paginate_by = _positive_int_or_none(owner, "max_paginate_by", attr("max_paginate_by"))
    if paginate_by is not None and max_paginate_by is not None and max_paginate_by < paginate_by:
        raise ImproperlyConfigured(
            f"{owner}.max_paginate_by ({max_paginate_by}) is smaller than paginate_by "
            f"({paginate_by}); raise max_paginate_by or lower paginate_by."
        )
    require_if_match = attr("require_if_match")
    if not isinstance(require_if_match, bool):
        raise ImproperlyConfigured(
            f"{owner}.require_if_match must be True or False, not {require_if_match!r}."
        )
    ordering = attr("ordering")
    if isinstance(ordering, str):
        ordering = (ordering,)
    if ordering is not None:
        if not isinstance(ordering, list | tuple):
            raise ImproperlyConfigured(
                f"{owner}.ordering must be None, a field name or a list of them, not {ordering!r}."
            )
        for name in ordering:
            if isinstance(name, str) and name != "?" and model is not None:
                _check_lookup(owner, "ordering", model, name)
    pagination = attr("pagination")
    if pagination not in PAGINATION_STYLES:
        raise ImproperlyConfigured(
            f"{owner}.pagination must be 'page' or 'cursor', not {pagination!r}."
        )
    if pagination == "cursor" and paginate_by is None:
        raise ImproperlyConfigured(
            f"{owner} has pagination = 'cursor' and paginate_by = None; cursor pages need "
            "a page size."
        )
    query = None
    if model is not None:
        query = compile_query(
            owner, model, attr("filter_fields"), attr("search_fields"), attr("ordering_fields")
        )
        if pagination == "cursor":
            _check_cursor_ordering(owner, model, ordering, queryset)
    return Config(
        model=None if schema is None else schema.model,
        fields=None if fields is None else tuple(fields),
        read_only_fields=tuple(read_only),
        query=query,
        pagination=pagination,
        paginated=paginate_by is not None,
    )


def _check_cursor_ordering(
    owner: str, model: type[models.Model], ordering: Any, queryset: Any
) -> None:
    """The default ordering of cursor pages must be field names (a keyset)."""
    if ordering:
        cursor_keys(owner, model, ordering)
        return
    query = getattr(queryset, "query", None)  # a manager has no query of its own
    if query is not None and query.order_by:
        cursor_keys(owner, model, query.order_by, "queryset")
    elif query is None or query.default_ordering:
        cursor_keys(owner, model, list(model._meta.ordering or ()), "Meta.ordering")
