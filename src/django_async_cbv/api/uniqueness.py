"""When a write may leave its unique checks to the database.

A ``ModelForm`` checks unique fields with one ``SELECT`` each before saving: on a
small model that query is most of the cost of a create. When every check it
would make is also a database constraint, the write skips them and saves; only
if the database then refuses the row (``IntegrityError``, the transaction rolled
back) are the checks run, so that a duplicate is still a 400 naming the field,
and anything else a 409.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.forms import BaseModelForm

__all__ = [
    "checks_are_constraints",
    "defer_unique_checks",
    "run_deferred_checks",
    "unique_checks_are_constraints",
]

_UNIQUE_METHODS = ("validate_unique", "_get_unique_checks", "_perform_unique_checks")
_DATE_CHECKS = ("unique_for_date", "unique_for_month", "unique_for_year")
_CLEAN_METHODS = ("full_clean", "clean_fields", "clean", "validate_constraints")


@cache
def unique_checks_are_constraints(model: type[models.Model]) -> bool:
    """Whether every unique check of ``model``'s ``validate_unique()`` is a constraint.

    False when the model overrides the checks (they may test what no constraint
    does, e.g. case-insensitively), has ``unique_for_date``-style fields, which
    only Python checks, or has a table Django does not manage (``managed =
    False``), which need not have the constraints its fields declare.
    """
    concrete = model._meta.concrete_model or model
    if not concrete._meta.managed:
        return False
    base = models.Model
    if any(getattr(model, name) is not getattr(base, name) for name in _UNIQUE_METHODS):
        return False
    return not any(
        getattr(field, name, None) for field in model._meta.fields for name in _DATE_CHECKS
    )


@cache
def checks_are_constraints(model: type[models.Model]) -> bool:
    """Whether ``model``'s validation checks nothing but what the database enforces.

    Then it may run before the write's transaction: a race that makes it stale is
    refused by the database. A model that overrides ``clean()`` (or another step of
    ``full_clean()``) may check a rule by reading other rows, which only holds if no
    other write commits between that read and the write: its validation runs inside
    the write's transaction, after the write lock (SQLite) is taken.
    """
    base = models.Model
    if any(getattr(model, name) is not getattr(base, name) for name in _CLEAN_METHODS):
        return False
    return unique_checks_are_constraints(model)


def _skip() -> None:
    """Stands in for ``form.validate_unique`` until the database has spoken."""


def defer_unique_checks(form: BaseModelForm[Any]) -> None:
    """Make ``form.is_valid()`` skip its unique checks (see :func:`run_deferred_checks`)."""
    form.validate_unique = _skip  # type: ignore[method-assign]


def run_deferred_checks(form: BaseModelForm[Any]) -> bool:
    """Run the unique checks that :func:`defer_unique_checks` skipped (or run them again,
    when a race may have made them stale).

    The model's ``Meta.constraints`` are checked again too (a ``UniqueConstraint`` is no
    unique check of the form's), then every check with the fields the form leaves out.
    Returns whether they found an error (a duplicate), now in ``form.errors``.
    """
    form.__dict__.pop("validate_unique", None)
    form.validate_unique()
    if not form.errors:
        # Meta.constraints (a UniqueConstraint of several fields) are not among the
        # unique checks: model validation checks them, and they may be stale too.
        model_form: Any = form  # ModelForm's own helpers, as its _post_clean() uses them
        try:
            form.instance.validate_constraints(exclude=model_form._get_validation_exclusions())
        except ValidationError as error:
            model_form._update_errors(error)
    if not form.errors:
        _check_left_out_fields(form)
    return bool(form.errors)


def _check_left_out_fields(form: BaseModelForm[Any]) -> None:
    """Check again what the database enforces, with the fields the form leaves out.

    A field the view or a hook sets (``form.instance.owner = request.user``) may take
    part in a unique field or constraint; its duplicate is an error of the whole form.
    Only database-enforced checks: a Python-only one (``unique_for_date``) cannot be
    what the database refused. Neither the primary key nor a parent link is checked:
    an insert that failed may have left them set to a rolled-back row's values.
    """
    instance: Any = form.instance
    opts = instance._meta
    keys = {
        opts.pk.name,
        *(link.name for link in opts.parents.values() if link is not None),
        *(parent._meta.pk.name for parent in opts.get_parent_list()),
    }
    checks, _ = instance._get_unique_checks(exclude=keys)
    errors = instance._perform_unique_checks(checks)
    try:
        instance.validate_constraints(exclude=keys)
    except ValidationError as error:
        for name, found in error.message_dict.items():
            errors.setdefault(name, []).extend(found)
    messages = [
        str(message) for found in errors.values() for message in ValidationError(found).messages
    ]
    if messages:
        form.add_error(None, ValidationError(messages))
