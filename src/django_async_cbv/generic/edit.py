"""Form views: ``AsyncFormView``, ``AsyncCreateView``, ``AsyncUpdateView``, ``AsyncDeleteView``.

A POST is validated in a worker thread (``ModelForm`` validation queries the
database for unique fields and choices). On the model views, validation and
``form_valid()`` (the save or delete, and whatever an override adds with the
async ORM) run in one ``transaction.atomic``, in one ``sync_to_async`` hop: an
exception anywhere leaves nothing written, and a request cancelled before the
transaction committed (a timeout, a client gone) is rolled back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, IntegrityError, models, router
from django.forms import BaseForm, Form
from django.forms import models as model_forms
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect

from django_async_cbv._hooks import call_hook
from django_async_cbv.api.transactions import check_cancelled, write_transaction
from django_async_cbv.api.uniqueness import run_deferred_checks
from django_async_cbv.api.write_thread import call_from_thread, run_write
from django_async_cbv.views import AsyncView

from .base import ContextMixin, TemplateResponseMixin
from .detail import BaseDetailView, SingleObjectMixin, SingleObjectTemplateResponseMixin

__all__ = [
    "AsyncCreateView",
    "AsyncDeleteView",
    "AsyncFormView",
    "AsyncUpdateView",
    "BaseCreateView",
    "BaseDeleteView",
    "BaseFormView",
    "BaseUpdateView",
    "FormMixin",
    "ModelFormMixin",
    "ProcessFormView",
]

T = TypeVar("T")


async def _form_data(request: HttpRequest) -> tuple[Any, Any]:
    """Return ``request.POST`` and ``request.FILES``, parsed off the event loop if need be.

    Parsing a multipart body reads spooled files: blocking work. Django's CSRF
    middleware has usually parsed a POST already (in a thread).
    """
    if not hasattr(request, "_post"):
        await sync_to_async(lambda: (request.POST, request.FILES))()
    return request.POST, request.FILES


async def _atomic_in_thread(using: str, func: Callable[[threading.Event], T]) -> T:
    """Run ``func(abandoned)`` inside the write's transaction on ``using``, in one hop.

    The JSON API's write transaction and hop (:func:`write_transaction`,
    :func:`run_write`): on SQLite, the writes of the process take turns and each
    takes the database's write lock before it reads anything, so that validation's
    reads cannot make the write fail with "database is locked"; a write refused for
    now (a wait past the busy timeout, a lost lock race) is a 503 with
    ``Retry-After``. If the awaiting request is cancelled meanwhile, the transaction
    is rolled back instead of committing after the client got its answer
    (``abandoned`` is then set: see :func:`check_cancelled`).
    """

    def work(abandoned: threading.Event) -> T:
        with write_transaction(using, abandoned):
            return func(abandoned)

    return await run_write(work)


def _written_model(view: Any, form: Any) -> type[models.Model] | None:
    """The model a form view writes: its ``ModelForm``'s, else its object's (None for neither)."""
    model = getattr(getattr(form, "_meta", None), "model", None)
    if isinstance(model, type) and issubclass(model, models.Model):
        return model
    instance = getattr(view, "object", None)
    return type(instance) if isinstance(instance, models.Model) else None


class FormMixin(ContextMixin):
    """Build, validate and answer a form; the same attributes as Django's ``FormMixin``.

    ``get_form()``, ``get_form_kwargs()``, ``form_valid()``, ``form_invalid()``
    and ``get_success_url()`` are ``async def``: override them and ``await
    super()``; a plain ``def`` override runs in a worker thread. Set ``atomic =
    True`` to run validation and ``form_valid()`` in one database transaction (the
    model views do).
    """

    initial: Mapping[str, Any] = {}
    form_class: type[BaseForm] | None = None
    success_url: Any = None
    prefix: str | None = None
    atomic: bool = False

    request: HttpRequest

    def get_initial(self) -> dict[str, Any]:
        """Return the initial data of the form (a copy of ``initial``)."""
        return dict(self.initial)

    def get_prefix(self) -> str | None:
        """Return the form prefix."""
        return self.prefix

    async def get_form_class(self) -> type[BaseForm]:
        """Return the form class (``form_class``)."""
        if self.form_class is None:
            name = type(self).__qualname__
            raise ImproperlyConfigured(
                f"{name} has no form class. Define {name}.form_class, or override "
                f"{name}.get_form_class()."
            )
        return self.form_class

    async def get_form(self, form_class: type[BaseForm] | None = None) -> BaseForm:
        """Return the form, bound to the request's data on POST and PUT.

        The form is built in a worker thread: a ``ModelForm`` for an existing
        object reads its many-to-many values from the database.
        """
        if form_class is None:
            form_class = await call_hook(self.get_form_class)
        assert form_class is not None
        kwargs = await call_hook(self.get_form_kwargs)
        form: BaseForm = await sync_to_async(form_class)(**kwargs)
        return form

    async def get_form_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments that build the form. Override to add some."""
        kwargs: dict[str, Any] = {"initial": self.get_initial(), "prefix": self.get_prefix()}
        if self.request.method in ("POST", "PUT"):
            data, files = await _form_data(self.request)
            kwargs.update({"data": data, "files": files})
        return kwargs

    async def get_success_url(self) -> str:
        """Return where a valid form redirects to (``success_url``)."""
        if not self.success_url:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__} has no URL to redirect to. Provide a success_url."
            )
        return str(self.success_url)  # it may be lazy (reverse_lazy)

    async def form_valid(self, form: Any) -> HttpResponseBase:
        """Answer a valid form: redirect to ``get_success_url()``."""
        return HttpResponseRedirect(await call_hook(self.get_success_url))

    async def form_invalid(self, form: Any) -> HttpResponseBase:
        """Answer an invalid form: render the template with the form and its errors."""
        context = await call_hook(self.get_context_data, form=form)
        return self.render_to_response(context)  # type: ignore[attr-defined,no-any-return]

    async def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """Add ``form`` to the context (a new one unless given)."""
        if "form" not in kwargs:
            kwargs["form"] = await call_hook(self.get_form)
        return await super().get_context_data(**kwargs)

    def get_write_database(self, form: Any) -> str:
        """Return the database alias of the transaction around ``form_valid()``."""
        model = _written_model(self, form)
        if model is None:
            return DEFAULT_DB_ALIAS
        return router.db_for_write(model, instance=getattr(self, "object", None))

    async def process_form(self, form: Any) -> HttpResponseBase:
        """Validate ``form`` (in a thread) and answer with ``form_valid()`` or ``form_invalid()``.

        With ``atomic``, validation and ``form_valid()`` share one transaction.
        """
        answer: HttpResponseBase
        if not self.atomic:
            if await sync_to_async(form.is_valid)():
                answer = await call_hook(self.form_valid, form)
            else:
                answer = await call_hook(self.form_invalid, form)
            return answer

        def validate_and_save(abandoned: threading.Event) -> HttpResponseBase | None:
            if not form.is_valid():
                return None
            check_cancelled(abandoned)  # answered while validating: no form_valid()
            response = call_from_thread(self.form_valid, form)
            if not isinstance(response, HttpResponseBase):
                # Django's own check, but before COMMIT: the write is rolled back,
                # rather than stored and the form shown again as if it were invalid.
                raise ValueError(
                    f"{type(self).__qualname__}.form_valid() didn't return an "
                    f"HttpResponse object. It returned {response!r} instead."
                )
            return response

        try:
            response = await _atomic_in_thread(self.get_write_database(form), validate_and_save)
        except IntegrityError:
            # Rolled back. A duplicate that another write committed after this one's
            # unique checks (possible where validation takes no lock: PostgreSQL) is
            # the form's error, as if it had been found in time.
            if not (
                isinstance(form, model_forms.BaseModelForm)
                and await sync_to_async(run_deferred_checks)(form)
            ):
                raise
            response = None
        if response is None:
            answer = await call_hook(self.form_invalid, form)
            return answer
        return response


class ModelFormMixin(FormMixin, SingleObjectMixin):
    """A ``ModelForm`` for ``model`` and ``fields`` (or ``form_class``) that saves the object."""

    fields: Any = None
    atomic = True

    async def get_form_class(self) -> type[BaseForm]:
        """Return ``form_class``, or a ModelForm made from the model and ``fields``."""
        name = type(self).__qualname__
        if self.fields is not None and self.form_class:
            raise ImproperlyConfigured(
                f"{name} specifies both 'fields' and 'form_class'; use one of them."
            )
        if self.form_class:
            return self.form_class
        if self.model is not None:
            model = self.model
        elif getattr(self, "object", None) is not None:
            model = type(self.object)
        else:
            model = (await call_hook(self.get_queryset)).model
        if self.fields is None:
            raise ImproperlyConfigured(
                f"{name} uses a ModelForm without the 'fields' attribute, which is "
                "prohibited. Set 'fields' (a list of field names) or 'form_class'."
            )
        return model_forms.modelform_factory(model, fields=self.fields)

    async def get_form_kwargs(self) -> dict[str, Any]:
        """Add the object being edited (``instance``) to the form's arguments."""
        kwargs = await super().get_form_kwargs()
        if hasattr(self, "object"):
            kwargs["instance"] = self.object
        return kwargs

    async def get_success_url(self) -> str:
        """Return ``success_url`` (formatted with the object's fields) or its absolute URL."""
        if self.success_url:
            return str(self.success_url).format(**self.object.__dict__)
        get_absolute_url = getattr(self.object, "get_absolute_url", None)
        if get_absolute_url is None:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__} has no URL to redirect to. Either provide a "
                "success_url or define a get_absolute_url method on the model."
            )
        # It may query (a related slug): run it off the event loop.
        return str(await sync_to_async(get_absolute_url)())

    async def form_valid(self, form: Any) -> HttpResponseBase:
        """Save the form (``self.object``), then redirect to ``get_success_url()``."""
        self.object = await sync_to_async(form.save)()
        return await super().form_valid(form)


class ProcessFormView(AsyncView):
    """Render the form on GET; validate it on POST (and PUT)."""

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Render a blank form."""
        context = await call_hook(self.get_context_data)  # type: ignore[attr-defined]
        return self.render_to_response(context)  # type: ignore[attr-defined,no-any-return]

    async def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Bind the form to the request's data, validate it and answer."""
        form = await call_hook(self.get_form)  # type: ignore[attr-defined]
        return await self.process_form(form)  # type: ignore[attr-defined,no-any-return]

    async def put(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Answer as POST does."""
        return await self.post(request, *args, **kwargs)


class BaseFormView(FormMixin, ProcessFormView):
    """A form view without a response mixin."""


class AsyncFormView(TemplateResponseMixin, BaseFormView):
    """Show a form on GET and handle it on POST: the async twin of ``FormView``.

    Set ``form_class``, ``template_name`` and ``success_url``; override ``async
    def form_valid()`` to act on the data.
    """


class BaseCreateView(ModelFormMixin, ProcessFormView):
    """Create an object from a form; without a response mixin."""

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Render a blank form."""
        self.object = None
        return await super().get(request, *args, **kwargs)

    async def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Validate and save a new object, atomically."""
        self.object = None
        return await super().post(request, *args, **kwargs)


class AsyncCreateView(SingleObjectTemplateResponseMixin, BaseCreateView):
    """Create an object: the async twin of ``CreateView`` (template ``<app>/<model>_form.html``)."""

    template_name_suffix = "_form"


class BaseUpdateView(ModelFormMixin, ProcessFormView):
    """Edit an existing object with a form; without a response mixin."""

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Render the form for the object."""
        self.object = await call_hook(self.get_object)
        return await super().get(request, *args, **kwargs)

    async def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Validate and save the changes, atomically."""
        self.object = await call_hook(self.get_object)
        return await super().post(request, *args, **kwargs)


class AsyncUpdateView(SingleObjectTemplateResponseMixin, BaseUpdateView):
    """Edit an object: the async twin of ``UpdateView`` (template ``<app>/<model>_form.html``)."""

    template_name_suffix = "_form"


class BaseDeleteView(FormMixin, BaseDetailView):
    """Delete an object after a confirmation form (Django 4.0+ semantics).

    GET shows the confirmation; POST validates ``form_class`` (default: an empty
    ``Form``) and deletes in ``form_valid()``; DELETE deletes at once. Both
    redirect to ``success_url``.
    """

    form_class: type[BaseForm] | None = Form
    atomic = True

    async def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Validate the confirmation form and delete the object, atomically."""
        self.object = await call_hook(self.get_object)
        form = await call_hook(self.get_form)
        return await self.process_form(form)

    async def form_valid(self, form: Any) -> HttpResponseBase:
        """Delete the object and redirect to ``get_success_url()``."""
        success_url = await call_hook(self.get_success_url)
        await sync_to_async(self.object.delete)()
        return HttpResponseRedirect(success_url)

    async def delete(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Delete the object (no form) and redirect to ``get_success_url()``."""
        self.object = obj = await call_hook(self.get_object)
        success_url = await call_hook(self.get_success_url)
        using = router.db_for_write(type(obj), instance=obj)

        def delete(abandoned: threading.Event) -> None:
            check_cancelled(abandoned)  # answered while waiting for the write lock
            obj.delete()

        await _atomic_in_thread(using, delete)
        return HttpResponseRedirect(success_url)

    async def get_success_url(self) -> str:
        """Return ``success_url``, formatted with the object's fields."""
        if not self.success_url:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__} has no URL to redirect to. Provide a success_url."
            )
        return str(self.success_url).format(**self.object.__dict__)


class AsyncDeleteView(SingleObjectTemplateResponseMixin, BaseDeleteView):
    """Confirm and delete an object: the async twin of ``DeleteView``.

    The template defaults to ``<app>/<model>_confirm_delete.html``.
    """

    template_name_suffix = "_confirm_delete"
