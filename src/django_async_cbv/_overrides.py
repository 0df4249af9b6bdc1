"""Overrides that cannot work on an async view, refused early (internal).

Django habits written as plain ``def`` on top of the library's ``async def`` methods
only fail at request time: a sync ``dispatch()`` (Django's access mixins) returns a
response where Django awaits a coroutine, and a sync hook that edits what
``super()`` returned gets a coroutine instead of a dict. These checks turn both
into an ``ImproperlyConfigured`` that says how to write them.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured

__all__ = ["check_dispatch", "check_sync_overrides"]

#: Django's sync access mixins and the library's async twins that replace them.
_ASYNC_TWINS = {
    "LoginRequiredMixin": "AsyncLoginRequiredMixin",
    "PermissionRequiredMixin": "AsyncPermissionRequiredMixin",
    "UserPassesTestMixin": "AsyncUserPassesTestMixin",
}


def check_dispatch(cls: type, stop: type) -> None:
    """Refuse a plain ``def dispatch`` in ``cls``'s MRO above ``stop`` (AsyncView).

    Django's sync access mixins return a redirect or raise from such a ``dispatch``,
    which Django then tries to await (a 500 for anonymous users). A ``dispatch`` made
    by ``method_decorator`` over an async one is itself async and passes, and so does
    a plain wrapper (``functools.wraps``) around an async one.
    """
    for klass in cls.__mro__:
        if klass is stop:
            return
        dispatch = vars(klass).get("dispatch")
        if dispatch is None or iscoroutinefunction(dispatch):
            continue
        if callable(dispatch) and iscoroutinefunction(inspect.unwrap(dispatch)):
            continue  # a plain decorator (functools.wraps) passing an async one's call on
        twin = _ASYNC_TWINS.get(klass.__name__)
        if twin is not None and klass.__module__ == "django.contrib.auth.mixins":
            raise ImproperlyConfigured(
                f"{cls.__qualname__} uses Django's {klass.__name__}, whose dispatch() is "
                f"sync and fails on an async view. Use django_async_cbv.{twin} (the same "
                "attributes and hooks) instead."
            )
        raise ImproperlyConfigured(
            f"{cls.__qualname__}: {klass.__qualname__}.dispatch() is a plain 'def', but an "
            "AsyncView's dispatch() is async. Write 'async def dispatch(self, request, "
            "*args, **kwargs)' and 'return await super().dispatch(request, *args, "
            "**kwargs)', or plug the step in as a request stage."
        )


def _returns_data(name: str) -> bool:
    """Whether hook ``name`` returns a value that overrides build on (not a response)."""
    return name.startswith("get_") or name in {"filter_queryset", "serialize"}


def _uses_super_result(func: object, name: str) -> bool:
    """Whether ``func``'s source does more with ``super().<name>(...)`` than return it.

    Returning the call's result as it is works (the library awaits the coroutine),
    from a ``return``, a lambda or a branch of a conditional expression they return;
    anything else (a name bound to it, an item set on it, a method called on it)
    gets a coroutine where the code expects a value. Without source, assume not.
    """
    try:
        source = textwrap.dedent(inspect.getsource(func))  # type: ignore[arg-type]
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return False
    # What a return (or a lambda) gives back, through either branch of a conditional.
    pending = [
        node.value if isinstance(node, ast.Return) else node.body
        for node in ast.walk(tree)
        if isinstance(node, ast.Return | ast.Lambda)
    ]
    returned: set[int] = set()
    while pending:
        value = pending.pop()
        returned.add(id(value))
        if isinstance(value, ast.IfExp):
            pending += [value.body, value.orelse]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == name
            and isinstance(node.func.value, ast.Call)
            and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "super"
            and id(node) not in returned
        ):
            return True
    return False


def check_sync_overrides(cls: type, stop: type) -> None:
    """Refuse a plain ``def`` data hook that uses what an async ``super()`` hook returns.

    Such an override gets a coroutine from ``super()`` where it expects a value (e.g.
    ``context = super().get_context_data(**kwargs); context["x"] = 1`` raises
    ``TypeError`` on every request). A plain ``def`` that does not call ``super()``,
    or returns its result as it is, works: the library awaits a hook's result when
    it is awaitable. Methods that return a response (handlers, ``handle_exception``)
    are not checked.
    """
    mro = cls.__mro__
    for index, klass in enumerate(mro):
        if klass is stop:
            return
        for name, value in vars(klass).items():
            if not _returns_data(name) or not inspect.isfunction(value):
                continue
            if iscoroutinefunction(value) or "super" not in value.__code__.co_names:
                continue
            following = next((vars(k)[name] for k in mro[index + 1 :] if name in vars(k)), None)
            if not (inspect.isfunction(following) and iscoroutinefunction(following)):
                continue
            if not _uses_super_result(value, name):
                continue
            raise ImproperlyConfigured(
                f"{klass.__qualname__}.{name}() is a plain 'def' that uses what "
                f"super().{name}() returns, but that {name}() is async: super() gives a "
                f"coroutine. Write 'async def {name}(...)' and 'await super().{name}(...)'."
            )
