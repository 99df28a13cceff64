"""`tobtest serve`: the run list, reports on demand, the run files, and that nothing outside
the store can be read, however the path is spelled.

Each test talks to a real server on 127.0.0.1 (a free port) with http.client, which sends
the request path exactly as written (no normalisation), so every spelling reaches the server.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.checker.test_report_runs import make_run
from tests.conftest import subprocess_env
from tobtest.serve import StoreServer, make_server

SECRET = "top-secret-outside-the-store"
VALID = "paxos-broadcast-partition/20260101T120000"
INVALID = "paxos-broadcast-partition/20260101T120100"
PARTIAL = "multipaxos-broadcast-none/20260101T120200"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("serve")
    root = base / "store"
    make_run(root, "paxos-broadcast-partition", "20260101T120000", seed=3)
    make_run(root, "paxos-broadcast-partition", "20260101T120100", seed=3, bug=True)
    make_run(root, "multipaxos-broadcast-none", "20260101T120200", seed=4, partial=True)
    (base / "secret.txt").write_text(SECRET)
    outside_run = make_run(base / "elsewhere", "x", "20260101T000000", seed=1)
    (base / "outside-dir").mkdir()
    (base / "outside-dir" / "secret.txt").write_text(SECRET)
    (root / "link-to-file").symlink_to(base / "secret.txt")
    (root / "link-to-dir").symlink_to(base / "outside-dir")
    (root / "link-to-run").symlink_to(outside_run)
    (root / "paxos-broadcast-partition" / "relative-up").symlink_to("../../secret.txt")
    (root / ".hidden").write_text(SECRET)
    return root


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[StoreServer]:
    srv = make_server(store, 0)
    thread = threading.Thread(target=srv.serve_forever, name="serve-test", daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


def fetch(server: StoreServer, path: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    """Sends `path` byte for byte (http.client refuses some of the spellings tested here)."""
    port = server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        request = f"{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        conn.sendall(request.encode("latin-1"))
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body.decode("utf-8", errors="replace")


def test_binds_to_loopback_only(server: StoreServer) -> None:
    assert server.server_address[0] == "127.0.0.1"
    assert server.server_address[1] > 0


def test_index_lists_every_run_with_its_verdict(server: StoreServer) -> None:
    status, headers, body = fetch(server, "/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in headers["content-security-policy"]
    for run, css, word in ((VALID, "valid", "VALID"), (INVALID, "invalid", "INVALID"),
                           (PARTIAL, "unchecked", "NOT CHECKED")):  # fmt: skip
        assert f'href="{run}/report.html"' in body
        assert f'href="{run}/"' in body
        assert f'<span class="verdict {css}">{word}</span>' in body
    assert body.index(PARTIAL) < body.index(INVALID) < body.index(VALID)  # newest first
    assert "link-to-run" not in body  # links are not runs of the store


def test_report_is_written_on_demand_and_again_when_results_change(
    server: StoreServer, store: Path
) -> None:
    report = store / INVALID / "report.html"
    assert not report.exists()
    status, headers, body = fetch(server, f"/{INVALID}/report.html")
    assert status == 200 and "INVALID" in body and report.exists()
    assert headers["content-type"] == "text/html; charset=utf-8"
    first = report.stat().st_mtime_ns
    assert fetch(server, f"/{INVALID}/report.html")[0] == 200
    assert report.stat().st_mtime_ns == first  # up to date: not rewritten
    results = store / INVALID / "results.json"
    later = time.time() + 5
    os.utime(results, (later, later))
    assert fetch(server, f"/{INVALID}/report.html")[0] == 200
    assert report.stat().st_mtime_ns != first


def test_concurrent_first_requests_all_get_the_report(server: StoreServer) -> None:
    answers: list[tuple[int, int]] = []

    def get() -> None:
        status, _, body = fetch(server, f"/{VALID}/report.html")
        answers.append((status, len(body)))

    threads = [threading.Thread(target=get) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 4 and {s for s, _ in answers} == {200}


def test_run_files_are_served_with_plain_types(server: StoreServer, store: Path) -> None:
    expected = {
        "history.jsonl": "text/plain; charset=utf-8",
        "results.json": "application/json",
        "test.yaml": "text/plain; charset=utf-8",
        "proxy.log": "text/plain; charset=utf-8",
        "nodes/n1.log": "text/plain; charset=utf-8",
        "nodes/n2.status.json": "application/json",
    }
    for name, ctype in expected.items():
        status, headers, body = fetch(server, f"/{VALID}/{name}")
        assert status == 200, name
        assert headers["content-type"] == ctype
        assert headers["x-content-type-options"] == "nosniff"
        assert body == (store / VALID / name).read_text()


def test_latest_links_inside_the_store_work(server: StoreServer, store: Path) -> None:
    status, _, body = fetch(server, "/latest/test.yaml")
    assert status == 200 and body == (store / PARTIAL / "test.yaml").read_text()
    status, _, body = fetch(server, "/latest/report.html")
    assert status == 200 and "results.json is missing" in body
    assert fetch(server, "/paxos-broadcast-partition/latest/results.json")[0] == 200


def test_folders_are_listed_and_need_their_slash(server: StoreServer) -> None:
    status, headers, _ = fetch(server, f"/{VALID}")
    assert status == 301 and headers["location"] == f"/{VALID}/"
    status, _, body = fetch(server, f"/{VALID}/")
    assert status == 200
    assert 'id="report-link"' in body
    for name in ("history.jsonl", "results.json", "test.yaml", "nodes/"):
        assert f'href="{name}"' in body
    status, _, body = fetch(server, f"/{VALID}/nodes/")
    assert status == 200 and 'href="n1.status.json"' in body


def test_head_and_unknown_methods(server: StoreServer) -> None:
    status, headers, body = fetch(server, f"/{VALID}/test.yaml", method="HEAD")
    assert status == 200 and body == "" and int(headers["content-length"]) > 0
    assert fetch(server, "/", method="POST")[0] == 501
    assert fetch(server, "/", method="DELETE")[0] == 501


# Each spelling with the answer it must get: 403 when the path itself is refused or leads out
# of the store, 404 when it names nothing there (or a hidden file).
TRAVERSALS = [
    ("/../secret.txt", 403),
    ("/..", 403),
    ("/../", 403),
    ("/./latest/test.yaml", 403),
    (f"/{VALID}/../../../secret.txt", 403),
    ("/%2e%2e/secret.txt", 403),
    ("/%2E%2E/secret.txt", 403),
    ("/.%2e/secret.txt", 403),
    ("/..%2fsecret.txt", 403),
    ("/%2e%2e%2fsecret.txt", 403),
    ("/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 403),
    ("/%252e%252e/secret.txt", 403),
    ("/%252e%252e%252fsecret.txt", 403),
    ("/%25252e%25252e/secret.txt", 403),
    ("/..%5csecret.txt", 403),
    ("/..\\secret.txt", 403),
    ("/%c0%ae%c0%ae/secret.txt", 403),
    ("/%00", 403),
    (f"/{VALID}/test.yaml%00.png", 403),
    (f"/{VALID}/test.yaml\x00", 403),
    ("secret.txt", 403),
    ("//etc/passwd", 404),
    ("/etc/passwd", 404),
    ("/link-to-file", 403),
    ("/link-to-dir/secret.txt", 403),
    ("/link-to-dir/", 403),
    ("/link-to-run/", 403),
    ("/link-to-run/results.json", 403),
    ("/link-to-run/report.html", 403),
    ("/paxos-broadcast-partition/relative-up", 403),
    ("/.hidden", 404),
    ("/" + "a/" * 2000, 403),
]


@pytest.mark.parametrize(("path", "expected"), TRAVERSALS)
def test_nothing_outside_the_store_can_be_read(
    server: StoreServer, store: Path, path: str, expected: int
) -> None:
    status, _, body = fetch(server, path)
    assert status == expected, (path, body)
    assert SECRET not in body
    assert "root:" not in body


def test_absolute_paths_of_real_files_are_not_served(server: StoreServer, store: Path) -> None:
    secret = store.parent / "secret.txt"
    for path in ("/" + str(secret), "/" + str(secret).lstrip("/"), str(secret)):
        status, _, body = fetch(server, path)
        assert status in (403, 404) and SECRET not in body


def test_a_link_out_of_the_store_gets_no_report_written(server: StoreServer, store: Path) -> None:
    outside = (store / "link-to-run").resolve()
    assert fetch(server, "/link-to-run/report.html")[0] == 403
    assert not (outside / "report.html").exists()


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_serve_command_prints_its_url_and_stops_on_ctrl_c(store: Path) -> None:
    code = (
        f"from tobtest.cli_inspect import serve; serve(['--store', {str(store)!r}, '--port', '0'])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"tobtest: serving {store} at http://127.0.0.1:"), line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert "stopped serving" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_serve_command_refuses_a_port_in_use_and_a_missing_store(
    store: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from tobtest.cli_inspect import EXIT_BAD_ARGS, serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(serve, ["--store", str(store), "--port", str(port)])
    assert result.exit_code == EXIT_BAD_ARGS
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    result = CliRunner().invoke(serve, ["--store", str(tmp_path / "missing"), "--port", "0"])
    assert result.exit_code == EXIT_BAD_ARGS and "no store at" in result.output
