"""Errors of model fields that the form of a write does not have."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.forms import BaseModelForm

__all__ = ["name_errors_of_any_field"]


def name_errors_of_any_field(form: BaseModelForm[Any]) -> None:
    """Make ``form`` report an error of a model field it does not have under its name.

    Model validation (``Model.clean()``), and a form's own ``clean()``, may name any
    field of the model, e.g. ``end`` when it is before ``start``. Django's
    ``add_error()`` raises ``ValueError`` for a field the form lacks, and the form of a
    write lacks some on purpose: those a ``PATCH`` does not send, and those with a
    default that a ``POST`` leaves out (see :meth:`InputPlan.prepare`), besides
    read-only ones. Their errors are a 400 naming them, never a 500. A name that is no
    field of the model is a mistake, which ``ValueError`` still reports.
    """
    add_error = form.add_error
    model_form: Any = form  # for its _errors, the ErrorDict filled while it is cleaned
    meta = form._meta.model._meta

    def lacked(name: str) -> bool:
        if name == NON_FIELD_ERRORS or name in form.fields:
            return False
        try:
            meta.get_field(name)
        except FieldDoesNotExist:
            return False
        return True

    def record(name: str, error_list: list[ValidationError]) -> None:
        errors = model_form._errors
        if name not in errors:
            errors[name] = form.error_class(renderer=form.renderer)
        errors[name].extend(error_list)

    def add_error_of_any_field(field: str | None, error: Any) -> None:
        if not isinstance(error, ValidationError):
            error = ValidationError(error)
        found: dict[str, list[ValidationError]] | None = getattr(error, "error_dict", None)
        if field is not None:
            if found is None and lacked(field):  # e.g. a form's clean(): add_error("end", ...)
                record(field, error.error_list)
                return
        elif found is not None:
            kept: dict[str, list[ValidationError]] = {}
            for name, error_list in found.items():
                if lacked(name):
                    record(name, error_list)
                else:
                    kept[name] = error_list
            if len(kept) < len(found):
                if not kept:
                    return
                error = ValidationError(kept)  # the caller's error is left as it was
        add_error(field, error)

    form.add_error = add_error_of_any_field  # type: ignore[method-assign]
