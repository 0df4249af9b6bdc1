"""Filtering, search and ordering of a list from its query string.

``filter_fields`` → ``?status=open``, ``?category__in=3,4``, ``?price__gte=10``;
``search_fields`` → ``?search=milk jug``; ``ordering_fields`` →
``?ordering=-price,created_at``. What a view accepts is compiled once per class
(and per distinct hook result) into a :class:`QueryPlan`, whose ``parameters``
list every query parameter the list understands, for documentation generators.

Every filter compares the column itself (``col = %s``, ``col >= %s``, ``col IN
(...)``), so an index on the filtered field can serve it; search uses
``icontains`` (``LIKE '%word%'``), which no ordinary index serves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import models
from django.db.models.fields import AutoFieldMixin
from django.http import QueryDict

from .input import invalid, out_of_range

__all__ = [
    "LOOKUPS",
    "MAX_IN_VALUES",
    "MAX_SEARCH_WORDS",
    "MAX_SEARCH_WORD_LENGTH",
    "RESERVED_PARAMETERS",
    "QueryParameter",
    "QueryPlan",
    "compared",
    "compile_query",
    "direct_field",
    "field_kind",
    "pk_columns",
    "value_field",
]

#: The lookups a filter field may have; ``exact`` and ``in`` fit every field.
LOOKUPS = ("exact", "in", "gt", "gte", "lt", "lte")
_RANGE = frozenset(LOOKUPS[2:])
#: At most this many comma-separated values in one ``__in`` parameter.
MAX_IN_VALUES = 100
#: At most this many words in ``?search=``.
MAX_SEARCH_WORDS = 10
#: At most this many characters in one word of ``?search=``: SQLite refuses a
#: ``LIKE`` pattern over 50,000 bytes ("LIKE or GLOB pattern too complex").
MAX_SEARCH_WORD_LENGTH = 200
#: Query parameters of the list itself, which no filter may take.
RESERVED_PARAMETERS = frozenset({"page", "page_size", "cursor", "search", "ordering"})

_UNFILTERABLE = (models.JSONField, models.FileField, models.BinaryField)
_COMPARABLE = (models.IntegerField, models.FloatField, models.DecimalField, models.DateField)


@dataclass(frozen=True, slots=True)
class QueryParameter:
    """One query parameter a list understands.

    ``kind`` is ``"filter"``, ``"search"``, ``"ordering"``, ``"page"``,
    ``"cursor"`` or ``"page_size"``. A filter names its model ``field`` and its
    ``lookup``; ``many`` is true for a comma-separated list (``__in``, ``ordering``);
    ``choices`` lists the accepted values where there is a fixed set (ordering
    names, a field's choices).
    """

    name: str
    kind: str
    field: models.Field[Any, Any] | None = None
    lookup: str | None = None
    many: bool = False
    choices: tuple[str, ...] = ()


Parser = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class _Filter:
    lookup: str  # the ORM lookup, e.g. "category_id__in"
    parse: Parser
    many: bool


def direct_field(
    owner: str, attr: str, model: type[models.Model], name: Any
) -> models.Field[Any, Any]:
    """Return the concrete, non-many-to-many field ``name`` (or ``"pk"``) of ``model``.

    Raises ImproperlyConfigured naming ``owner.attr`` otherwise.
    """
    meta = model._meta
    field: Any = None
    if isinstance(name, str):
        if name == "pk":
            field = meta.pk
        else:
            try:
                field = meta.get_field(name)
            except FieldDoesNotExist:
                field = None
    if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
        valid = ", ".join(["pk", *(f.name for f in meta.concrete_fields)])
        raise ImproperlyConfigured(
            f"{owner}.{attr} names {name!r}, which is not a field of {meta.label} (only "
            f"the model's own concrete fields can be used). Valid names: {valid}."
        )
    return field


def pk_columns(model: type[models.Model]) -> tuple[str, ...]:
    """Return the attnames of ``model``'s primary key: several for a composite one."""
    pk: Any = model._meta.pk  # a CompositePrimaryKey has no column of its own
    return tuple(part.attname for part in pk.fields) if pk.column is None else (pk.attname,)


def value_field(field: models.Field[Any, Any]) -> models.Field[Any, Any]:
    """Return the field whose values ``field`` holds.

    A foreign key (or one-to-one field) holds its target's values; a
    ``GeneratedField`` those of its ``output_field``.
    """
    target: Any = field
    while True:
        if target.is_relation and (target.many_to_one or target.one_to_one):
            target = target.target_field
        elif getattr(target, "generated", False) and hasattr(target, "output_field"):
            target = target.output_field
        else:
            return target  # type: ignore[no-any-return]


def _value_parser(field: models.Field[Any, Any]) -> Parser:
    """Parse one query-string value as the model field's form field would.

    The value must also pass the field's validators (e.g. the database's integer
    range) and be storable (a datetime in range once in UTC, a duration that
    fits in 64 bits of microseconds): anything else is a ValidationError.
    """
    target: Any = value_field(field)
    form_field: forms.Field | None
    if isinstance(target, models.BooleanField):
        form_field = forms.NullBooleanField()
    elif isinstance(target, AutoFieldMixin):
        form_field = forms.IntegerField(required=False)
    else:
        form_field = target.formfield(required=False)
    boolean = isinstance(target, models.BooleanField)

    def parse(raw: str) -> Any:
        value = target.to_python(raw) if form_field is None else form_field.clean(raw)
        if boolean and value is None:
            raise ValidationError("Enter true or false.")
        if value is not None:
            target.run_validators(value)  # e.g. the database's integer range
            problem = out_of_range(value)
            if problem is not None:
                raise ValidationError(str(problem))
        return value

    return parse


def compared(value: Any) -> Any:
    """``value`` as the right-hand side of ``col = %s``: a boolean as a ``Value``.

    Django writes ``done=True`` as ``WHERE "done"`` (``NOT "done"`` for False)
    where the database allows it, which SQLite cannot serve from an index on
    the column; a ``Value`` on the right-hand side keeps the comparison.
    """
    return models.Value(value) if isinstance(value, bool) else value


def _then_compared(parse: Parser) -> Parser:
    """``parse``, its value made :func:`compared`."""
    return lambda raw: compared(parse(raw))


def _as_filter_spec(owner: str, value: Any) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
    if isinstance(value, Mapping):
        items: list[tuple[str, tuple[str, ...] | None]] = []
        for name, lookups in value.items():
            if isinstance(lookups, str) or not isinstance(lookups, list | tuple):
                raise ImproperlyConfigured(
                    f"{owner}.filter_fields[{name!r}] must be a list of lookups "
                    f"({', '.join(LOOKUPS)}), not {lookups!r}."
                )
            items.append((name, tuple(lookups)))
        return tuple(items)
    if isinstance(value, list | tuple):
        return tuple((name, None) for name in value)
    raise ImproperlyConfigured(
        f"{owner}.filter_fields must be a list of field names or a dict of field names "
        f"to lookups, not {value!r}."
    )


def _names(owner: str, attr: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ImproperlyConfigured(
            f"{owner}.{attr} must be a list or tuple of field names, not {value!r}."
        )
    return tuple(value)


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """The filters, search fields and ordering names a list accepts, compiled."""

    filters: Mapping[str, _Filter]
    search: tuple[str, ...]  # ORM lookups, e.g. "name__icontains"
    ordering: Mapping[str, str]  # client name → column attname
    pk_attnames: tuple[str, ...]  # the pk's column attnames (several for a composite pk)
    parameters: tuple[QueryParameter, ...]

    def filter(self, queryset: models.QuerySet[Any], query: QueryDict) -> models.QuerySet[Any]:
        """Return ``queryset`` narrowed by the request's filters and search words.

        A value the field cannot take is a 400 problem naming its parameter;
        parameters the plan does not know, and empty values, are ignored.
        """
        conditions: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name, spec in self.filters.items():
            raw = query.get(name)
            if not raw:
                continue
            try:
                value = self._parse(spec, raw)
            except ValidationError as exc:
                errors[name] = list(exc.messages)
            else:
                if value != []:  # "?x__in=," names no value: ignored like "?x__in="
                    conditions[spec.lookup] = value
        words = (query.get("search") or "").split() if self.search else []
        if len(words) > MAX_SEARCH_WORDS:
            errors["search"] = [f"Use at most {MAX_SEARCH_WORDS} words."]
        elif any("\x00" in word for word in words):
            errors["search"] = ["Null characters are not allowed."]
        elif any(len(word) > MAX_SEARCH_WORD_LENGTH for word in words):
            errors["search"] = [f"Use words of at most {MAX_SEARCH_WORD_LENGTH} characters."]
        if errors:
            raise invalid(errors)
        if conditions:
            queryset = queryset.filter(**conditions)
        for word in words:
            match = models.Q()
            for lookup in self.search:
                match |= models.Q(**{lookup: word})
            queryset = queryset.filter(match)
        return queryset

    @staticmethod
    def _parse(spec: _Filter, raw: str) -> Any:
        if not spec.many:
            value = spec.parse(raw)
            if value is None or value == "":
                raise ValidationError("Enter a value.")
            return value
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        if len(parts) > MAX_IN_VALUES:
            raise ValidationError(f"Give at most {MAX_IN_VALUES} values.")
        return [spec.parse(part) for part in parts]

    def requested_ordering(self, query: QueryDict) -> tuple[str, ...] | None:
        """Return the ORM ordering that ``?ordering=`` asks for, the pk last; None if absent.

        A name the plan does not offer, or one named twice, is a 400 problem.
        """
        raw = query.get("ordering")
        if not raw or not self.ordering:
            return None
        keys: list[str] = []
        seen: set[str] = set()
        for part in raw.split(","):
            part = part.strip()
            name = part.removeprefix("-")
            if not name:
                continue
            column = self.ordering.get(name)
            if column is None or column in seen:
                offered = ", ".join(self.ordering)
                problem = "is named twice" if column else "cannot be used"
                raise invalid({"ordering": [f"{name!r} {problem}; choose from: {offered}."]})
            seen.add(column)
            keys.append(("-" if part.startswith("-") else "") + column)
        if not keys:
            return None
        keys += [column for column in self.pk_attnames if column not in seen]
        return tuple(keys)


def field_kind(field: models.Field[Any, Any], held: models.Field[Any, Any]) -> str:
    """Name the type of ``field`` in a message, e.g. ``GeneratedField (JSONField)``."""
    kind = type(field).__name__
    return kind if field.is_relation or held is field else f"{kind} ({type(held).__name__})"


@functools.lru_cache(maxsize=256)
def _compile(
    owner: str,
    model: type[models.Model],
    filter_spec: tuple[tuple[str, tuple[str, ...] | None], ...],
    search_fields: tuple[str, ...],
    ordering_fields: tuple[str, ...],
) -> QueryPlan:
    filters: dict[str, _Filter] = {}
    parameters: list[QueryParameter] = []
    for name, lookups in filter_spec:
        field = direct_field(owner, "filter_fields", model, name)
        held = value_field(field)
        kind = field_kind(field, held)
        if isinstance(held, _UNFILTERABLE):
            raise ImproperlyConfigured(
                f"{owner}.filter_fields names {name!r}, a {kind}, which "
                "cannot be filtered on from the query string."
            )
        comparable = isinstance(held, _COMPARABLE) and not field.is_relation
        if lookups is None:
            lookups = LOOKUPS if comparable else LOOKUPS[:2]
        for lookup in lookups:
            if lookup not in LOOKUPS:
                raise ImproperlyConfigured(
                    f"{owner}.filter_fields[{name!r}] has the unknown lookup {lookup!r}; "
                    f"use {', '.join(LOOKUPS)}."
                )
            if lookup in _RANGE and not comparable:
                raise ImproperlyConfigured(
                    f"{owner}.filter_fields[{name!r}] has the lookup {lookup!r}, but "
                    f"{name!r} is a {kind}: range lookups fit number, "
                    "date and datetime fields only."
                )
            param = name if lookup == "exact" else f"{name}__{lookup}"
            if param in RESERVED_PARAMETERS:
                raise ImproperlyConfigured(
                    f"{owner}.filter_fields: the parameter {param!r} is the list's own; "
                    "filter on that field with a get_queryset() of your own."
                )
            orm = field.attname if lookup == "exact" else f"{field.attname}__{lookup}"
            parse = _value_parser(field)
            if lookup == "exact" and isinstance(held, models.BooleanField):
                parse = _then_compared(parse)
            filters[param] = _Filter(orm, parse, lookup == "in")
            choices = tuple(str(key) for key, _ in field.flatchoices) if field.choices else ()
            parameters.append(
                QueryParameter(param, "filter", field, lookup, lookup == "in", choices)
            )
    search: list[str] = []
    for name in search_fields:
        field = direct_field(owner, "search_fields", model, name)
        if not isinstance(field, models.CharField | models.TextField):
            raise ImproperlyConfigured(
                f"{owner}.search_fields names {name!r}, a {type(field).__name__}; search "
                "fits text fields (CharField, TextField) only."
            )
        search.append(f"{field.attname}__icontains")
    if search:
        parameters.append(QueryParameter("search", "search"))
    ordering: dict[str, str] = {}
    for name in ordering_fields:
        field = direct_field(owner, "ordering_fields", model, name)
        held = value_field(field)
        if isinstance(held, _UNFILTERABLE):
            raise ImproperlyConfigured(
                f"{owner}.ordering_fields names {name!r}, a {field_kind(field, held)}, which "
                "cannot order a list."
            )
        ordering[name] = field.attname
    if ordering:
        offered = tuple(ordering) + tuple(f"-{name}" for name in ordering)
        parameters.append(QueryParameter("ordering", "ordering", many=True, choices=offered))
    return QueryPlan(filters, tuple(search), ordering, pk_columns(model), tuple(parameters))


def compile_query(
    owner: str,
    model: type[models.Model],
    filter_fields: Sequence[str] | Mapping[str, Sequence[str]],
    search_fields: Sequence[str],
    ordering_fields: Sequence[str],
) -> QueryPlan:
    """Validate the query attributes of view ``owner`` over ``model``; return the plan.

    Raises ImproperlyConfigured naming the class, the attribute and the fix.
    Compiled once per distinct arguments.
    """
    return _compile(
        owner,
        model,
        _as_filter_spec(owner, filter_fields),
        _names(owner, "search_fields", search_fields),
        _names(owner, "ordering_fields", ordering_fields),
    )
