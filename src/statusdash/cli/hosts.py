"""``statusdash hosts ls|show``: the fleet from the server's read API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from statusdash.cli.common import CaOpt, CertOpt, JsonOpt, KeyOpt, ServerOpt, call, print_json

if TYPE_CHECKING:
    from statusdash.schema import HostSummary

app = typer.Typer(help="Hosts of the fleet.", no_args_is_help=True)
MARK = {"up": "●", "stale": "◐", "down": "○"}


def _pct(v: float | None, threshold: float | None = None) -> str:
    if v is None:
        return "-"
    flag = " !" if threshold is not None and v >= threshold else ""
    return f"{v:.0f}%{flag}"


def human_bytes(v: float | None, suffix: str = "") -> str:
    if v is None:
        return "-"
    for unit in ("", "K", "M", "G", "T"):
        if abs(v) < 1000:
            return f"{v:.0f}{unit}{suffix}" if unit == "" else f"{v:.1f}{unit}{suffix}"
        v /= 1000
    return f"{v:.1f}P{suffix}"


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def _table(rows: list[HostSummary]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(box=None, header_style="bold")
    for col in ("", "HOST", "STATUS", "CPU", "MEM", "DISK", "LOAD", "NET ↓/↑", "UP", "SEEN"):
        t.add_column(col)
    for h in rows:
        net = f"{human_bytes(h.net_rx_bytes_s)}/{human_bytes(h.net_tx_bytes_s)}"
        t.add_row(
            MARK[h.status.value],
            h.host,
            h.status.value,
            _pct(h.cpu_percent, 90),
            _pct(h.memory_percent, 85),
            _pct(h.disk_percent, 90),
            "-" if h.load_1m is None else f"{h.load_1m:.2f}",
            net,
            human_age(h.uptime_s),
            human_age(h.seen_ago_s),
        )
    Console().print(t)


@app.command("ls")
def ls(
    as_json: JsonOpt = False,
    server: ServerOpt = None,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
) -> None:
    """List every host with its latest summary and status (up, stale, down)."""
    from statusdash.cli.common import reader_client

    with reader_client(server, ca, cert, key) as client:
        rows = call(client.hosts)
    if as_json:
        print_json([h.model_dump(mode="json") for h in rows])
    elif not rows:
        typer.echo("no host has reported yet")
    else:
        _table(rows)


@app.command("show")
def show(
    host: Annotated[str, typer.Argument(help="host id")],
    as_json: JsonOpt = False,
    server: ServerOpt = None,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
) -> None:
    """One host: latest report, disks, services and active alerts."""
    from statusdash.cli.common import reader_client

    with reader_client(server, ca, cert, key) as client:
        detail = call(lambda: client.host(host))
    if as_json:
        print_json(detail.model_dump(mode="json", by_alias=True))
        return
    s, r = detail.summary, detail.report
    sysinfo = r.system
    typer.echo(
        f"{MARK[s.status.value]} {s.host}  {s.status.value}  seen {human_age(s.seen_ago_s)} ago"
    )
    if sysinfo:
        typer.echo(
            f"  {sysinfo.os} · {sysinfo.kernel} · {sysinfo.arch} · {sysinfo.cpu_count} cores"
        )
    typer.echo(
        f"  cpu {_pct(s.cpu_percent, 90)}  mem {_pct(s.memory_percent, 85)}"
        f"  load {s.load_1m if s.load_1m is not None else '-'}  up {human_age(s.uptime_s)}"
    )
    for d in r.disks:
        typer.echo(f"  disk {d.mount:<20} {_pct(d.percent, 90):>6}  {human_bytes(d.total, 'B')}")
    for svc in r.services:
        typer.echo(f"  service {svc.name:<20} {svc.status.value}  {svc.detail}")
    for a in detail.alerts:
        typer.echo(f"  ▲ {a.message}")
