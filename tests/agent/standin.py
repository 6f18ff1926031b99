"""A tiny keep-alive HTTP server standing in for the ingest API, with scripted answers.

The end-to-end tests use the real server; this one lets the push tests script a 413, a 422 or
a 401 on the n-th request and count connections, which the real server cannot do.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StandIn:
    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], list[dict[str, Any]]]] = []
        self.script: list[int] = []  # statuses for the next requests; 200 once it is empty
        self.html = False  # answer 200 with a web page, as a misconfigured proxy would
        self.seen: set[str] = set()
        self.accepted: list[str] = []  # report ids, in the order first accepted
        self.connections = 0
        self.events: list[dict[str, Any]] = []  # POST /api/events, in the order taken
        self.events_script: list[int] = []  # statuses for the next event posts
        self.delay_s = 0.0  # how long to sit on each request before answering
        self.error_headers: dict[str, str] = {}  # sent with every answer that is not a 200
        self.in_flight = threading.Event()  # set when a request arrives
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                outer.connections += 1
                super().setup()

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                data = json.loads(body)
                if self.path == "/api/events":
                    self._events(data["events"])
                    return
                reports = data["reports"] if self.path.endswith("/batch") else [data]
                outer.posts.append((self.path, dict(self.headers), reports))
                outer.in_flight.set()
                time.sleep(outer.delay_s)
                status = outer.script.pop(0) if outer.script else 200
                if outer.html:
                    raw = b"<html>welcome</html>"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                    return
                if status == 200:
                    new = [r["report_id"] for r in reports if r["report_id"] not in outer.seen]
                    outer.seen.update(new)
                    outer.accepted += new
                    answer: dict[str, Any] = {
                        "accepted": len(new),
                        "duplicates": len(reports) - len(new),
                    }
                else:
                    answer = {"error": f"e{status}", "detail": f"scripted {status}"}
                self._answer(status, answer)

            def _events(self, events: list[dict[str, Any]]) -> None:
                outer.posts.append((self.path, dict(self.headers), []))
                status = outer.events_script.pop(0) if outer.events_script else 200
                if status == 200:
                    outer.events += events
                    answer: dict[str, Any] = {"accepted": len(events), "changed": len(events)}
                else:
                    answer = {"error": f"e{status}", "detail": f"scripted {status}"}
                self._answer(status, answer)

            def _answer(self, status: int, answer: dict[str, Any]) -> None:
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in outer.error_headers.items() if status != 200 else ():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
