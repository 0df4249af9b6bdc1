"""Template rendering on the event loop, ``AsyncTemplateView`` and ``AsyncRedirectView``.

Django renders a ``TemplateResponse`` after the view has returned, in a worker
thread, where a query made by the template (an unprefetched relation, say) runs
unnoticed and holds that thread. The views of this package render before they
return, on the event loop, where Django refuses database access with
``SynchronousOnlyOperation``: such a template fails at once, in tests too, with
a message that names the template and the fix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation
from django.forms import BaseForm, ModelChoiceField
from django.forms.formsets import BaseFormSet
from django.forms.widgets import Input
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
)
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.log import log_response

from django_async_cbv._hooks import call_hook, on_loop
from django_async_cbv.problems import problem_response
from django_async_cbv.views import AsyncView

__all__ = [
    "AsyncRedirectView",
    "AsyncTemplateView",
    "ContextMixin",
    "TemplateResponseMixin",
    "prepare_to_render",
    "render_on_loop",
]

_AUTH_CONTEXT_PROCESSOR = "django.contrib.auth.context_processors.auth"


def _resolved_name(response: Any) -> str:
    """Return the name of the template ``response`` renders (as its loader knows it)."""
    names = getattr(response, "template_name", None)
    try:
        template = response.resolve_template(names)
        origin = getattr(getattr(template, "template", template), "origin", None)
        name = getattr(origin, "template_name", None) or getattr(origin, "name", None)
        if name:
            return repr(str(name))
    except Exception:  # it cannot even be found again: name the candidates
        pass
    if isinstance(names, str):
        return repr(names)
    if isinstance(names, Sequence):
        return " or ".join(repr(str(n)) for n in names) or "(unknown)"
    return repr(names)


def _template_label(response: Any, exc: BaseException) -> str:
    """Name the template, and the line that queried when the engine is in debug mode."""
    label = _resolved_name(response)
    debug = getattr(exc, "template_debug", None)
    if isinstance(debug, Mapping) and debug.get("line"):
        during = str(debug.get("during", "")).strip()
        where = str(debug.get("name", ""))
        if where and not where.endswith(label.strip("'\"")):
            label = f"{label} (in {where!r}, line {debug['line']}: {during})"
        else:
            label = f"{label} (line {debug['line']}: {during})"
    return label


def render_on_loop(response: HttpResponseBase, view: object = None) -> HttpResponseBase:
    """Render a not-yet-rendered ``TemplateResponse`` now, on the running event loop.

    A template that queries the database raises ``SynchronousOnlyOperation``
    naming the template and the usual fixes, instead of blocking silently.
    Other responses are returned as they are.
    """
    render = getattr(response, "render", None)
    if not callable(render) or getattr(response, "is_rendered", True):
        return response
    try:
        rendered: HttpResponseBase = render()
    except SynchronousOnlyOperation as exc:
        where = f"{type(view).__qualname__} rendered" if view is not None else "Rendering"
        raise SynchronousOnlyOperation(
            f"{where} the template {_template_label(response, exc)}, which made a database "
            "query. Async views render templates on the event loop, where a query would "
            "block every other request. Fetch the data before rendering: use "
            "select_related() or prefetch_related() in get_queryset() for related objects, "
            "or load it with the async ORM in get_context_data()."
        ) from exc
    return rendered


def _needs_choices(field: Any) -> bool:
    """Whether ``field`` would query its choices when rendered.

    Not when its widget is an ``<input>`` (``HiddenInput``, ``TextInput``…), which
    never lists the choices: a model formset's hidden ``id`` field, say, whose
    queryset is the model's whole table.
    """
    return (
        isinstance(field, ModelChoiceField)  # ModelMultipleChoiceField too
        and "_choices" not in vars(field)
        and field.queryset is not None
        and not isinstance(field.widget, Input)
    )


def _context_items(context: Mapping[str, Any]) -> Iterator[Any]:
    """The values of ``context``, and the items of a list, tuple or dict of forms or
    formsets among them (judged by its first item, so that a long list of objects is
    not scanned): where a template finds forms to render."""
    for value in context.values():
        yield value
        if not isinstance(value, list | tuple | dict) or not value:
            continue
        items = list(value.values()) if isinstance(value, dict) else value
        if isinstance(items[0], BaseForm | BaseFormSet):
            yield from items


def _fetch_choices(values: list[Any]) -> None:
    """Fix the choices of the model choice fields of these forms and formsets (blocking).

    Django's ``ModelChoiceField`` returns choices set explicitly instead of querying
    its queryset again; validation still uses the queryset.
    """
    for value in values:
        forms = value.forms if isinstance(value, BaseFormSet) else [value]
        for form in forms:
            for field in form.fields.values():
                if _needs_choices(field):
                    field.choices = list(field.choices)


def _uses_auth_context_processor(using: str | None) -> bool:
    """Whether the template engine(s) a response may render with add ``perms``."""
    backends = [engines[using]] if using else engines.all()
    for backend in backends:
        engine = getattr(backend, "engine", backend)
        processors = getattr(engine, "context_processors", None) or getattr(
            backend, "context_processors", None
        )
        if processors and _AUTH_CONTEXT_PROCESSOR in processors:
            return True
    return False


async def _load_permissions(request: HttpRequest) -> None:
    """Load the user's permissions with the async ORM, so ``perms`` makes no query.

    Django's ``ModelBackend`` keeps them on the user object; ``has_perm()`` and
    ``has_module_perms()`` then read that cache. Other backends get their
    ``aget_all_permissions()`` called; a backend that caches nothing still queries.
    """
    auser = getattr(request, "auser", None)
    if auser is None:
        return
    user = await auser()
    if (
        not getattr(user, "is_authenticated", False)
        or not getattr(user, "is_active", False)
        or getattr(user, "is_superuser", False)  # has every permission: no query
        or hasattr(user, "_perm_cache")
    ):
        return
    aget_all_permissions = getattr(user, "aget_all_permissions", None)
    if aget_all_permissions is not None:
        await aget_all_permissions()


async def prepare_to_render(response: HttpResponseBase, request: HttpRequest) -> None:
    """Fetch, off the event loop or with the async ORM, what rendering would query.

    For a not-yet-rendered ``TemplateResponse``: the choices of every model
    choice field of the forms (and formsets) in the context, in one worker thread;
    and, when the template engine uses ``django.contrib.auth``'s context
    processor, the signed-in user's permissions (for ``perms``).
    """
    if getattr(response, "is_rendered", True):
        return
    context = getattr(response, "context_data", None)
    if isinstance(context, Mapping):
        forms = [
            value
            for value in _context_items(context)
            if isinstance(value, BaseFormSet)
            or (
                isinstance(value, BaseForm)
                and any(_needs_choices(f) for f in value.fields.values())
            )
        ]
        if forms:
            await sync_to_async(_fetch_choices)(forms)
    if _uses_auth_context_processor(getattr(response, "using", None)):
        await _load_permissions(request)


class ContextMixin:
    """Build the template context: ``view``, ``extra_context`` and the keyword arguments."""

    extra_context: Mapping[str, Any] | None = None

    async def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """Return the template context. Override to add to it; ``await super()``."""
        kwargs.setdefault("view", self)
        if self.extra_context is not None:
            kwargs.update(self.extra_context)
        return kwargs


class TemplateResponseMixin:
    """Render a template into the response, on the event loop, before the view returns.

    ``render_to_response()`` returns a ``TemplateResponse`` as in Django (so
    ``response.context_data`` and ``response.template_name`` stay inspectable);
    the view renders it before handing it to the later request stages (the cache
    stores rendered content) and to Django. Template response middleware
    therefore sees a rendered response.
    """

    template_name: str | None = None
    template_engine: str | None = None
    response_class: type[HttpResponse] = TemplateResponse
    content_type: str | None = None

    request: HttpRequest

    def render_to_response(self, context: dict[str, Any], **response_kwargs: Any) -> HttpResponse:
        """Return a ``response_class`` for ``get_template_names()`` and ``context``."""
        response_kwargs.setdefault("content_type", self.content_type)
        return self.response_class(
            request=self.request,
            template=self.get_template_names(),
            context=context,
            using=self.template_engine,
            **response_kwargs,
        )

    def get_template_names(self) -> list[str]:
        """Return the candidate template names, most specific first."""
        if self.template_name is None:
            name = type(self).__qualname__
            raise ImproperlyConfigured(
                f"{name} requires either a definition of 'template_name' or an "
                "implementation of 'get_template_names()'."
            )
        return [self.template_name]

    async def run_handler(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        """Run the handler, then render its template response on the event loop."""
        response: HttpResponseBase = await super().run_handler(  # type: ignore[misc]
            request, *args, **kwargs
        )
        await prepare_to_render(response, request)
        return render_on_loop(response, self)


class AsyncTemplateView(TemplateResponseMixin, ContextMixin, AsyncView):
    """Render ``template_name`` with the URL's keyword arguments in the context.

    The async twin of Django's ``TemplateView``: override ``async def
    get_context_data()`` (and ``await super()``) to add to the context.
    """

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Render the template with ``get_context_data(**kwargs)``."""
        context = await call_hook(self.get_context_data, **kwargs)
        return self.render_to_response(context)


class AsyncRedirectView(AsyncView):
    """Redirect every request, whatever its method, to ``url`` or ``pattern_name``.

    The async twin of Django's ``RedirectView``: ``url`` may hold ``%(name)s``
    placeholders filled from the URL's keyword arguments; ``pattern_name`` is
    reversed with the URL's arguments; ``query_string = True`` keeps the query
    string; ``permanent = True`` answers 301 instead of 302. Without a URL the
    answer is 410 Gone (problem+json).
    """

    permanent: bool = False
    url: str | None = None
    pattern_name: str | None = None
    query_string: bool = False

    @on_loop
    def get_redirect_url(self, *args: Any, **kwargs: Any) -> str | None:
        """Return the URL to redirect to, or None for 410 Gone.

        Override to compute it: an ``async def`` override is awaited, a plain
        ``def`` one runs in a thread (it may query).
        """
        if self.url:
            url = self.url % kwargs
        elif self.pattern_name:
            url = reverse(self.pattern_name, args=args, kwargs=kwargs)
        else:
            return None
        query = self.request.META.get("QUERY_STRING", "")
        if query and self.query_string:
            url = f"{url}?{query}"
        return url

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Redirect (301 if ``permanent`` else 302), or answer 410 without a URL."""
        url = await call_hook(self.get_redirect_url, *args, **kwargs)
        if url:
            if self.permanent:
                return HttpResponsePermanentRedirect(url)
            return HttpResponseRedirect(url)
        response = problem_response(410, detail="This resource is no longer available.")
        log_response("Gone: %s", request.path, response=response, request=request)
        return response

    # Every method redirects, as with Django's RedirectView.
    async def head(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Answer as GET does."""
        return await self.get(request, *args, **kwargs)

    async def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Answer as GET does."""
        return await self.get(request, *args, **kwargs)

    async def options(  # type: ignore[override]
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        """Answer as GET does."""
        return await self.get(request, *args, **kwargs)

    async def delete(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Answer as GET does."""
        return await self.get(request, *args, **kwargs)

    async def put(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Answer as GET does."""
        return await self.get(request, *args, **kwargs)

    async def patch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Answer as GET does."""
        return await self.get(request, *args, **kwargs)
