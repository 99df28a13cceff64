"""`tobtest serve`: a local web UI over the store, on 127.0.0.1 only.

    server = make_server(Path("store"), port=0)       # 0: a free port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.server_address                              # ("127.0.0.1", 41234)
    ...
    server.shutdown(); server.server_close()

`/` lists the runs (test, time, protocol, nemesis, workload, verdict by colour), each linking
its report and its folder; `/<test>/<run>/report.html` is written on demand when missing
or older than the run's results; any other path is a file or folder inside the store
(history.jsonl, results.json, test.yaml, logs, node status), `latest` links included.

Nothing outside the store can be read: a request path must be plain `/a/b/c` after one
round of percent-decoding, so `..`, `.`, absolute or backslashed paths, NUL bytes and any `%`
left after decoding (double encoding) are refused (403), and whatever a path names must
resolve, symlinks followed, to a place inside the store (`store/latest` does; a link out of
it is refused). Only GET and HEAD. HTML is sent with a Content-Security-Policy that lets
nothing load from anywhere else.
"""

from __future__ import annotations

import logging
import mimetypes
import shutil
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from tobtest.checker.report_data import list_runs, verdict_class, verdict_word

log = logging.getLogger("tobtest.serve")
HOST = "127.0.0.1"
REPORT_NAME = "report.html"
REQUEST_PATH_CHARS_MAX = 2048
CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
TEXT_SUFFIXES = {".log", ".jsonl", ".yaml", ".yml", ".txt", ".edn", ".tmp"}
_report_lock = threading.Lock()  # one report written at a time (they share a machine's cores)


class Refused(Exception):
    """A request path that is not served; `status` is 403 or 404."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def resolve_request_path(root: Path, raw: str) -> Path:
    """The file or folder inside `root` (resolved) that a raw request target names, or
    Refused. A run's report.html is named even before it is written."""
    if len(raw) > REQUEST_PATH_CHARS_MAX:
        raise Refused(HTTPStatus.FORBIDDEN, "path too long")
    if "\x00" in raw or not raw.startswith("/"):
        raise Refused(HTTPStatus.FORBIDDEN, "not a plain absolute path")
    path = urlsplit(raw).path
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise Refused(HTTPStatus.FORBIDDEN, "path is not UTF-8") from None
    if any(bad in decoded for bad in ("%", "\\", "\x00")):
        raise Refused(HTTPStatus.FORBIDDEN, "encoded or unusual characters in path")
    parts = [p for p in decoded.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise Refused(HTTPStatus.FORBIDDEN, "dot segments in path")
    if any(p.startswith(".") for p in parts):
        raise Refused(HTTPStatus.NOT_FOUND, "hidden file")
    root = root.resolve()
    if parts and parts[-1] == REPORT_NAME:
        # A run's report may not be written yet: its folder must exist, the page need not.
        folder = _inside(root, root.joinpath(*parts[:-1]))
        if _is_run(folder):
            report = folder / REPORT_NAME
            if not report.is_symlink():
                return report
    return _inside(root, root.joinpath(*parts))


def _inside(root: Path, candidate: Path) -> Path:
    """`candidate` with every symlink resolved, if it exists and lies inside `root`."""
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise Refused(HTTPStatus.NOT_FOUND, "no such file") from None
    if resolved != root and root not in resolved.parents:
        raise Refused(HTTPStatus.FORBIDDEN, "outside the store")
    return resolved


def ensure_report(run_dir: Path) -> Path:
    """The run's report.html, written first when it is missing or older than its inputs."""
    from tobtest.checker.report import write_report

    report = run_dir / REPORT_NAME
    inputs = [run_dir / n for n in ("results.json", "history.jsonl", "test.yaml")]
    with _report_lock:
        newest = max((p.stat().st_mtime for p in inputs if p.exists()), default=0.0)
        if not report.exists() or report.stat().st_mtime < newest:
            write_report(run_dir)
    return report


def _is_run(folder: Path) -> bool:
    return (folder / "history.jsonl").is_file() or (folder / "test.yaml").is_file()


class StoreHandler(BaseHTTPRequestHandler):
    server_version = "tobtest-serve"
    server: StoreServer

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._handle(send_body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._handle(send_body=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    def _handle(self, send_body: bool) -> None:
        root = self.server.store_root
        try:
            if urlsplit(self.path).path in ("/", "/index.html"):
                self._send_html(self._index_page(root), send_body)
                return
            if self.path == "/favicon.ico":  # browsers ask for it on plain-text pages
                self.send_response(HTTPStatus.NO_CONTENT)
                self.end_headers()
                return
            target = resolve_request_path(root, self.path)
            if target.is_dir():
                self._send_dir(root, target, send_body)
            else:
                if target.name == REPORT_NAME and _is_run(target.parent):
                    ensure_report(target.parent)
                self._send_file(target, send_body)
        except Refused as refused:
            self._send_error(refused.status, str(refused), send_body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the server
            log.exception("request %s failed", self.path)
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, type(exc).__name__, send_body)

    def _index_page(self, root: Path) -> str:
        from tobtest.checker.report import environment

        rows = [
            {
                "row": r,
                "href": quote(r.relative) + "/",
                "verdict": verdict_word(r.valid),
                "css": verdict_class(r.valid),
            }
            for r in list_runs(root)
        ]
        template = environment().get_template("store_index.html")
        return template.render(store=str(root), rows=rows, has_latest=(root / "latest").exists())

    def _send_dir(self, root: Path, folder: Path, send_body: bool) -> None:
        if not urlsplit(self.path).path.endswith("/"):
            # Relative links in the listing (and in report.html) need the trailing slash.
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", urlsplit(self.path).path + "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        from tobtest.checker.report import environment

        entries = []
        for child in sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name)):
            if child.name.startswith("."):
                continue
            name = child.name + ("/" if child.is_dir() else "")
            entries.append(
                {"name": name, "href": quote(child.name) + ("/" if child.is_dir() else "")}
            )
        relative = folder.relative_to(root).as_posix() if folder != root else ""
        page = (
            environment()
            .get_template("store_dir.html")
            .render(
                path="/" + relative, entries=entries, is_run=_is_run(folder), report=REPORT_NAME
            )
        )
        self._send_html(page, send_body)

    def _send_html(self, page: str, send_body: bool, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = page.encode("utf-8")
        self.send_response(status)
        self._common_headers("text/html; charset=utf-8", len(body))
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_file(self, path: Path, send_body: bool) -> None:
        if path.suffix in TEXT_SUFFIXES:
            ctype = "text/plain; charset=utf-8"
        elif path.suffix == ".html":
            ctype = "text/html; charset=utf-8"
        elif path.suffix == ".json":
            ctype = "application/json"
        else:
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as handle:
            size = path.stat().st_size
            self.send_response(HTTPStatus.OK)
            self._common_headers(ctype, size)
            if ctype.startswith("text/html"):
                self.send_header("Content-Security-Policy", CSP)
            self.end_headers()
            if send_body:
                shutil.copyfileobj(handle, self.wfile)

    def _send_error(self, status: HTTPStatus, reason: str, send_body: bool) -> None:
        body = f"{status.value} {status.phrase}: {reason}\n".encode()
        self.send_response(status)
        self._common_headers("text/plain; charset=utf-8", len(body))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _common_headers(self, ctype: str, length: int) -> None:
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")


class StoreServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow client never holds up shutdown

    def __init__(self, store_root: Path, port: int) -> None:
        self.store_root = store_root.resolve()
        super().__init__((HOST, port), StoreHandler)


def make_server(store: Path, port: int = 0) -> StoreServer:
    """A server over `store` bound to 127.0.0.1:`port` (0: a free port), not yet serving."""
    return StoreServer(store, port)
