"""Record a trace of this machine's own agent reports, for the storage benchmark (issue 13).

The agent's real ``Collector`` (and real service checks) runs for ``--cycles`` cycles, one every
``--every`` seconds of wall time; each report is stamped ``--interval`` seconds after the one
before (10 s by default), so a 720-cycle trace reads as 2 hours of a host at 10 s and records in
12 minutes. Rates are measured over the real ``--every`` (noisier than over 10 s: a pessimistic
input for a compressor). Two busy phases give the data a real shape: a CPU burner process during
25-45 % of the cycles, and the burner plus a disk writer (4 MiB written and fsynced a second, in a
temporary directory) during 65-75 %; the rest is this machine idling (with whatever the other
users of the machine do). Five service checks run each cycle: TCP and HTTP against listeners this
script opens on 127.0.0.1 (healthy), TCP to a closed port (unhealthy), a process that runs and one
that does not. Every report is validated against the wire contract before it is written.

Output: JSON lines, one ``MetricsReport`` per line, oldest first, gzip-compressed when the path
ends in ``.gz`` (format: bench/traces/README.md).

    python -m bench.agent_trace --cycles 720 --out bench/traces/host-10s.jsonl.gz
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "traces" / "host-10s.jsonl.gz"
BURN = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass\n"


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accept(listener: socket.socket) -> None:
    """Accept and close each connection of the TCP check (a full backlog would hang it)."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:  # closed at the end
            return
        conn.close()


def _disk_writer(stop: threading.Event, where: Path) -> None:
    block = os.urandom(1 << 20)
    path = where / "trace-writer.bin"
    while not stop.is_set():
        with path.open("wb") as f:
            for _ in range(4):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        stop.wait(1.0)
    path.unlink(missing_ok=True)


def _phase(i: int, n: int) -> str:
    f = i / n
    if 0.25 <= f < 0.45:
        return "cpu"
    if 0.65 <= f < 0.75:
        return "cpu+disk"
    return "idle"


def record(cycles: int, every: float, interval: float, out: Path, top: int) -> dict[str, Any]:
    """Record ``cycles`` reports to ``out``; return a summary."""
    from statusdash import wire
    from statusdash.agent.checks.config import parse_services
    from statusdash.agent.checks.run import run_checks
    from statusdash.agent.sampler import Collector

    if cycles < 1 or every <= 0 or interval <= 0:
        raise ValueError("cycles, every and interval must be positive")
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_accept, args=(listener,), daemon=True).start()
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    checks = parse_services(
        {
            "services": [
                {"name": "db", "tcp": f"127.0.0.1:{listener.getsockname()[1]}"},
                {"name": "web", "http": f"http://127.0.0.1:{web.server_address[1]}/"},
                {"name": "cache", "tcp": f"127.0.0.1:{_closed_port()}", "timeout": 1},
                {"name": "python", "process": "python"},
                {"name": "batch", "process": "statusdash-no-such-process"},
            ]
        }
    )
    collector = Collector("trace-host", interval, top_processes=top)
    start = datetime.now(UTC).replace(microsecond=0)
    tmp = Path(tempfile.mkdtemp(prefix="statusdash-trace-"))
    burner: subprocess.Popen[bytes] | None = None
    writer_stop = threading.Event()
    writer: threading.Thread | None = None
    out.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if out.suffix == ".gz" else open
    phases: dict[str, int] = {}
    t_next = time.monotonic() + every
    try:
        with opener(out, "wt", encoding="utf-8") as f:
            sink: IO[str] = f
            for i in range(cycles):
                phase = _phase(i, cycles)
                phases[phase] = phases.get(phase, 0) + 1
                want_burn = phase != "idle"
                if want_burn and burner is None:
                    left = (cycles - i) * every + 5  # ends by itself even if we are killed
                    code = BURN.format(s=left)
                    burner = subprocess.Popen([sys.executable, "-c", code])
                elif not want_burn and burner is not None:
                    burner.kill()
                    burner.wait(5)
                    burner = None
                if phase == "cpu+disk" and writer is None:
                    writer = threading.Thread(target=_disk_writer, args=(writer_stop, tmp))
                    writer.start()
                elif phase != "cpu+disk" and writer is not None:
                    writer_stop.set()
                    writer.join(10)
                    writer, writer_stop = None, threading.Event()
                time.sleep(max(0.0, t_next - time.monotonic()))
                t_next += every
                report = collector.collect()
                at = (start + timedelta(seconds=i * interval)).isoformat()
                report["collected_at"] = at
                report["services"] = [{**r, "checked_at": at} for r in run_checks(checks)]
                wire.convert(report)  # a bug in the agent, not a trace, if this refuses it
                sink.write(json.dumps(report, separators=(",", ":")) + "\n")
    finally:
        if burner is not None:
            burner.kill()
            burner.wait(5)
        if writer is not None:
            writer_stop.set()
            writer.join(10)
        web.shutdown()
        web.server_close()
        listener.close()
        for p in tmp.iterdir():
            p.unlink(missing_ok=True)
        tmp.rmdir()
    return {"cycles": cycles, "phases": phases, "bytes": out.stat().st_size, "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.agent_trace", description=__doc__)
    ap.add_argument("--cycles", type=int, default=720)
    ap.add_argument("--every", type=float, default=1.0, help="wall seconds between cycles")
    ap.add_argument("--interval", type=float, default=10.0, help="stamped seconds between")
    ap.add_argument("--top-processes", type=int, default=10)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    summary = record(args.cycles, args.every, args.interval, args.out, args.top_processes)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
