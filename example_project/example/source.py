"""The example's own source files, as pages: ``/source/`` and ``/source/<path>``.

Every demo on the dashboard links the file that implements it. The files are read
from this project's directory, so the links work offline and show the code that is
running. Only the project's Python files, templates, styles and scripts are served:
a path is answered only if it is one of those files, found by walking the directory,
so no path can reach anything else. The walk skips hidden files and folders (a
``.venv``, tool caches) and symbolic links, which may point outside the project.
"""

from __future__ import annotations

import os
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from django_async_cbv import AsyncView

#: The kinds of files shown.
SUFFIXES = frozenset({".py", ".html", ".css", ".js", ".md"})
#: Directories never shown.
SKIPPED = frozenset({"__pycache__"})


def shown(name: str) -> bool:
    """Whether a file or folder of this name may be shown: not hidden, not skipped."""
    return not name.startswith(".") and name not in SKIPPED


def source_files() -> list[str]:
    """The project's shown files, as paths relative to its directory, sorted."""
    root = Path(settings.BASE_DIR)
    found = []
    # os.walk() does not enter linked folders; linked files are left out below.
    for directory, folders, names in os.walk(root):
        folders[:] = [name for name in folders if shown(name)]
        for name in names:
            path = Path(directory, name)
            if shown(name) and path.suffix in SUFFIXES and path.is_file() and not path.is_symlink():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


class SourceView(AsyncView):
    """List the project's files, or show one of them with line numbers."""

    template_name = "source.html"

    async def get(self, request: HttpRequest, path: str = "") -> HttpResponse:
        # Disk reads run in a thread: the event loop serves other requests meanwhile.
        files = await sync_to_async(source_files)()
        if not path:
            return render(request, self.template_name, {"files": files})
        if path not in files:  # only a listed file: no "..", no absolute paths
            raise Http404("No such source file.")
        text = await sync_to_async((Path(settings.BASE_DIR) / path).read_text)(
            encoding="utf-8", errors="replace"
        )
        return render(
            request,
            self.template_name,
            {"path": path, "lines": text.splitlines()},
        )
