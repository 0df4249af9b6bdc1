"""docs/tutorial.md, run as written: every command, every file, every response it shows.

The page is read in order, block by block:

- a ``console`` block is a list of ``$ command`` lines, each followed by the output the
  page shows for it (possibly none);
- a ``literalinclude`` or ``code-block`` whose ``:caption:`` is a path writes that file
  (relative to the current directory); a caption ending in ``, at the end`` appends to it.

Commands run in a temporary directory with this interpreter (``python``,
``django-admin`` and ``uvicorn`` are this venv's), so the project imports the library
under test. ``pip install`` is not run: the packages it names must already be
importable. ``cd`` changes the directory for the following commands. A command ending
in ``&`` runs in the background until ``kill %N``; ``uvicorn`` runs in the background
until the test ends (the page runs it in a second terminal). ``curl`` is run when it is
installed, else the same request is sent with urllib (``test_urllib_sends_what_curl_sends``
checks that translation of each of the page's ``curl`` lines against curl itself). The
page's ports (8000, 8001) are replaced by free ones, in the commands and in the files alike.

Shown output is compared line by line for commands, and for ``curl`` by parts: the
status line, each shown header (the page shows a subset), and the body. ``…`` stands
for any text within a line, and a line holding only ``…`` for any number of lines.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.test_docs import DOCS, EXAMPLES, Block, blocks

pytestmark = pytest.mark.e2e

PAGE = DOCS / "tutorial.md"
PORTS = re.compile(r"\b800([01])\b")
START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 120.0


# -- reading the page ----------------------------------------------------------------------


@dataclass
class Command:
    line: str
    output: list[str]
    where: str


@dataclass
class WriteFile:
    path: str
    content: str
    append: bool
    where: str


def _file_step(block: Block) -> WriteFile | None:
    caption = block.options.get("caption")
    if caption is None:
        return None
    match = re.fullmatch(r"([\w./-]+)(, at the end)?", caption)
    assert match, f"{block.where}: caption {caption!r} is not a path"
    if block.directive == "literalinclude":
        assert set(block.options) <= {"caption", "start-at"}, f"{block.where}: {block.options}"
        source = (EXAMPLES / Path(block.argument).name).read_text(encoding="utf-8")
        if start := block.options.get("start-at"):
            lines = source.splitlines(keepends=True)
            first = next(i for i, line in enumerate(lines) if start in line)
            source = "".join(lines[first:])
        content = source
    else:
        content = block.body.strip("\n") + "\n"
    return WriteFile(match.group(1), content, bool(match.group(2)), block.where)


def _commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    for line in block.content.rstrip("\n").split("\n"):
        if line.startswith("$ "):
            commands.append(Command(line[2:], [], block.where))
        else:
            assert commands, f"{block.where}: output before any command"
            commands[-1].output.append(line)
    return commands


def steps(ports: dict[str, int]) -> list[Command | WriteFile]:
    """The page's commands and files in order, with its ports replaced by ``ports``."""

    def port(match: re.Match[str]) -> str:
        return str(ports[match.group(0)])

    found: list[Command | WriteFile] = []
    text = PORTS.sub(port, PAGE.read_text(encoding="utf-8"))
    for block in blocks(PAGE, text):
        if block.kind == "fence" and block.language == "console":
            found.extend(_commands(block))
        elif block.directive in {"literalinclude", "code-block"}:
            step = _file_step(block)
            if step is not None:
                step.content = PORTS.sub(port, step.content)
                found.append(step)
    return found


# -- matching shown output -----------------------------------------------------------------


def _line_pattern(line: str) -> str:
    return "[^\n]*".join(re.escape(part) for part in line.split("…"))


def assert_output_shown(shown: list[str], actual: str, where: str) -> None:
    """The shown lines appear in ``actual`` in order, ``…`` matching anything."""
    if not shown:
        return
    pattern = "".join(
        r"(?:[^\n]*\n)*?" if line.strip() == "…" else _line_pattern(line) + "\n" for line in shown
    )
    assert re.search(pattern, actual + "\n"), (
        f"{where}: expected\n{chr(10).join(shown)}\ngot\n{actual}"
    )


@dataclass
class HttpAnswer:
    status_line: str
    headers: list[tuple[str, str]]
    body: str


def assert_answer_shown(shown: list[str], answer: HttpAnswer, with_head: bool, where: str) -> None:
    """The status line, each shown header and the body are the answer's."""
    context = f"{where}: got {answer}"
    lines = list(shown)
    if with_head:
        status = lines.pop(0)
        assert re.fullmatch(_line_pattern(status), answer.status_line), context
        while lines and lines[0]:
            name, _, value = lines.pop(0).partition(": ")
            # As written: curl -i prints each name as the server sent it (HTTP/1.1).
            values = [v for n, v in answer.headers if n == name]
            assert values, f"{context}\nno {name} header"
            assert any(re.fullmatch(_line_pattern(value), v) for v in values), (
                f"{context}\n{name}: {values} is not {value!r}"
            )
        lines = lines[1:]
    body = "\n".join(lines)
    assert re.fullmatch(_line_pattern(body), answer.body), f"{context}\nbody is not {body!r}"


# -- running commands ----------------------------------------------------------------------


@dataclass
class CurlRequest:
    url: str
    method: str = "GET"
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: str | None = None
    include: bool = False


def parse_curl(args: list[str]) -> CurlRequest:
    """The request that ``curl <args>`` sends, for the options the tutorial uses."""
    request = CurlRequest(url="")
    method = None
    words = iter(args)
    for word in words:
        if word == "-i":
            request.include = True
        elif word in {"-s", "-S", "-sS"}:
            continue
        elif word == "-X":
            method = next(words)
        elif word == "-H":
            name, _, value = next(words).partition(":")
            request.headers.append((name.strip(), value.strip()))
        elif word in {"-d", "--data"}:
            request.data = next(words)
        elif word.startswith("-"):
            raise AssertionError(f"the test does not know curl's {word}")
        else:
            request.url = word
    request.method = method or ("POST" if request.data is not None else "GET")
    return request


def send_with_urllib(request: CurlRequest) -> HttpAnswer:
    data = None if request.data is None else request.data.encode()
    sent = urllib.request.Request(
        request.url, data=data, headers=dict(request.headers), method=request.method
    )
    if data is not None and not any(n.lower() == "content-type" for n, _ in request.headers):
        sent.add_header("Content-Type", "application/x-www-form-urlencoded")  # as curl does
    try:
        response = urllib.request.urlopen(sent, timeout=30)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        body = response.read().decode()
        status = f"HTTP/1.1 {response.status} {response.reason}"
        return HttpAnswer(status, list(response.headers.items()), body)


def send_with_curl(args: list[str]) -> HttpAnswer:
    result = subprocess.run(
        ["curl", "-sS", "-i", *args],
        capture_output=True,
        check=False,
        timeout=COMMAND_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr.decode()
    head, _, body = result.stdout.decode().partition("\r\n\r\n")
    status, *header_lines = head.split("\r\n")
    headers = [(n, v) for n, _, v in (line.partition(": ") for line in header_lines)]
    return HttpAnswer(status, headers, body)


@dataclass
class Background:
    command: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Tutorial:
    """Runs the page's steps, keeping the state a reader's shell would keep."""

    def __init__(self, root: Path, *, use_curl: bool) -> None:
        self.cwd = root
        self.use_curl = use_curl
        self.jobs: list[Background] = []  # started with "&", for kill %N
        self.servers: list[Background] = []  # every background process
        bindir = str(Path(sys.executable).parent)
        env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
        env.pop("PYTHONPATH", None)
        env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.env = env

    def argv(self, words: list[str]) -> list[str]:
        program, *rest = words
        if program == "python":
            return [sys.executable, *rest]
        if program in {"django-admin", "uvicorn"}:
            return [sys.executable, "-m", program.replace("-admin", ""), *rest]
        return words

    def run(self, step: Command | WriteFile) -> None:
        if isinstance(step, WriteFile):
            target = self.cwd / step.path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a" if step.append else "w", encoding="utf-8") as file:
                file.write(step.content)
            return
        words = shlex.split(step.line)
        background = words[-1] == "&"
        if background:
            words.pop()
        if words[:4] == ["python", "-m", "pip", "install"]:
            self.check_installed(words[4:], step)
        elif words[0] == "cd":
            self.cwd = self.cwd / words[1]
        elif words[0] == "kill":
            self.kill(words[1], step)
        elif words[0] == "curl":
            self.curl(words[1:], step)
        elif background or words[0] == "uvicorn":
            self.start(words, step, job=background)
        else:
            result = subprocess.run(
                self.argv(words),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
            assert result.returncode == 0, f"{step.where}: {step.line}\n{result.stdout}"
            assert_output_shown(step.output, result.stdout, step.where)

    def check_installed(self, packages: list[str], step: Command) -> None:
        for package in packages:
            module = re.split(r"[\[<>=]", package)[0].replace("-", "_")
            assert importlib.util.find_spec(module), f"{step.where}: {package} is not installed"

    def curl(self, args: list[str], step: Command) -> None:
        request = parse_curl(args)
        answer = send_with_curl(args) if self.use_curl else send_with_urllib(request)
        assert_answer_shown(step.output, answer, request.include, step.where)

    def start(self, words: list[str], step: Command, *, job: bool) -> None:
        log = Path(tempfile.mkstemp(prefix="tutorial-", suffix=".log")[1])
        with log.open("wb") as out:
            process = subprocess.Popen(
                self.argv(words),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started = Background(step.line, process, log)
        self.servers.append(started)
        if job:
            self.jobs.append(started)
        port = int(re.findall(r"\b\d{4,5}\b", step.line)[0])
        self.wait_listening(started, port)
        assert not step.output, f"{step.where}: output shown for a background command"

    def wait_listening(self, server: Background, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            assert server.process.poll() is None, f"{server.command} exited:\n{server.output()}"
            assert time.monotonic() < deadline, f"{server.command} is not listening"
            # A bounded wait that ends early if the process exits.
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(timeout=0.05)

    def kill(self, target: str, step: Command) -> None:
        assert target.startswith("%"), f"{step.where}: kill a job, as %N"
        job = self.jobs[int(target[1:]) - 1]
        job.process.terminate()
        job.process.wait(timeout=15)

    def stop(self) -> None:
        for server in self.servers:
            if server.process.poll() is None:
                server.process.terminate()
                try:
                    server.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    server.process.kill()
                    server.process.wait()
            server.log.unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def tutorial(tmp_path: Path) -> Iterator[Tutorial]:
    runner = Tutorial(tmp_path, use_curl=shutil.which("curl") is not None)
    try:
        yield runner
    finally:
        runner.stop()


# -- the tests -----------------------------------------------------------------------------


def test_the_page_uses_the_blocks_it_teaches() -> None:
    """The tutorial's code uses each building block it promises, in the app it writes."""
    found = steps({"8000": 8000, "8001": 8001})
    files = {step.path: step.content for step in found if isinstance(step, WriteFile)}
    views = files["catalog/views.py"]
    for name in ("AsyncAPIView", "AsyncCacheMixin", "AsyncRateLimitMixin"):
        assert f"{name}," in views
    assert "AsyncCircuitBreakerMixin" in views
    assert "AsyncHTTPClient(" in views
    settings = [s.content for s in found if isinstance(s, WriteFile) and "settings" in s.path]
    assert 'INSTALLED_APPS += ["django_async_cbv",' in settings[0]
    lines = [step.line for step in found if isinstance(step, Command)]
    assert "django-admin startproject mysite" in lines
    assert "python manage.py startapp catalog" in lines
    assert sum(line.startswith("curl ") for line in lines) >= 8


def test_tutorial_runs_as_written(tutorial: Tutorial) -> None:
    """From startproject to the last curl, each step does what the page shows."""
    ports = {"8000": free_port(), "8001": free_port()}
    for step in steps(ports):
        tutorial.run(step)
    uvicorn = next(s for s in tutorial.servers if "uvicorn" in s.command)
    log = uvicorn.output()
    # The page quotes the log line of the circuit opening.
    quoted = re.search(r"uvicorn's log says\s+`([^`]+)`", PAGE.read_text(encoding="utf-8"))
    assert quoted
    assert quoted.group(1) in log
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log


class Echo(BaseHTTPRequestHandler):
    """Answers every request with what it received: method, path, headers, body."""

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = {
            "method": self.command,
            "path": self.path,
            "content_type": self.headers.get("Content-Type"),
            "body": self.rfile.read(length).decode(),
        }
        payload = json.dumps(received).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _echo

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_urllib_sends_what_curl_sends(echo_port: int) -> None:
    """Without curl, each of the page's curl lines sends the request curl would send."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: nothing to compare the translation with")
    lines = [
        step.line
        for step in steps({"8000": echo_port, "8001": echo_port})
        if isinstance(step, Command) and step.line.startswith("curl ")
    ]
    assert lines
    for line in lines:
        args = shlex.split(line)[1:]
        by_curl = json.loads(send_with_curl(args).body)
        by_urllib = json.loads(send_with_urllib(parse_curl(args)).body)
        assert by_urllib == by_curl, line
