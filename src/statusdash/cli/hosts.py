"""``statusdash hosts ls|show|rm|series``: the fleet from the server's read API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from statusdash import units
from statusdash.cli.boundary import fail, group
from statusdash.cli.common import (
    Connection,
    JsonOpt,
    age,
    check_host,
    echo,
    print_json,
    print_listing,
    print_table,
    reader,
)
from statusdash.durations import humanize

if TYPE_CHECKING:
    from statusdash.client import ApiClient
    from statusdash.schema import HostSummary, Thresholds

app = group(help="Hosts of the fleet.")
MARK = {"up": "●", "stale": "◐", "down": "○"}


def _pct(v: float | None, threshold: float) -> str:
    """A percentage, flagged ``!`` at or above the server's alert threshold."""
    flag = " !" if v is not None and v >= threshold else ""
    return units.percent(v) + flag


def _thresholds(client: ApiClient) -> Thresholds:
    """The thresholds the server alerts on, so the CLI flags what the server judges."""
    return client.sentiment().thresholds


def _table(rows: list[HostSummary], limits: Thresholds) -> None:
    columns = ("", "HOST", "STATUS", "CPU", "MEM", "DISK", "LOAD", "NET ↓/↑ /s", "UP", "SEEN")
    print_table(
        columns,
        (
            (
                MARK[h.status.value],
                h.host,
                h.status.value,
                _pct(h.cpu_percent, limits.cpu),
                _pct(h.memory_percent, limits.memory),
                _pct(h.disk_percent, limits.disk),
                "-" if h.load_1m is None else f"{h.load_1m:.2f}",
                f"{units.size(h.net_rx_bytes_s)}/{units.size(h.net_tx_bytes_s)}",
                humanize(h.uptime_s),
                humanize(h.seen_ago_s),
            )
            for h in rows
        ),
    )
    typer.echo(units.count(len(rows), "host"))


@app.command("ls")
@reader
def ls(conn: Connection, as_json: JsonOpt = False) -> None:
    """List every host with its latest summary and status (up, stale, down)."""
    with conn.client() as client:
        rows = client.hosts()
        table = lambda: _table(rows, _thresholds(client))  # noqa: E731
        print_listing(rows, as_json, "no host has reported yet", table)


@app.command("show")
@reader
def show(
    conn: Connection,
    host: Annotated[str, typer.Argument(help="host id")],
    as_json: JsonOpt = False,
) -> None:
    """One host: latest report, disks, services and active alerts."""
    check_host(host)
    with conn.client() as client:
        detail = client.host(host)
        if as_json:
            print_json(detail.model_dump(mode="json", by_alias=True))
            return
        limits = _thresholds(client)
    s, r = detail.summary, detail.report
    sysinfo = r.system
    echo(f"{MARK[s.status.value]} {s.host}  {s.status.value}  seen {humanize(s.seen_ago_s)} ago")
    if sysinfo:
        cores = units.count(sysinfo.cpu_count, "core")
        echo(f"  {sysinfo.os} · {sysinfo.kernel} · {sysinfo.arch} · {cores}")
    echo(
        f"  cpu {_pct(s.cpu_percent, limits.cpu)}  mem {_pct(s.memory_percent, limits.memory)}"
        f"  load {s.load_1m if s.load_1m is not None else '-'}  up {humanize(s.uptime_s)}"
    )
    for d in r.disks:
        use = _pct(d.percent, limits.disk)
        echo(f"  disk {d.mount:<20} {use:>6}  {units.size(d.total, 'B')}")
    for svc in r.services:
        echo(f"  service {svc.name:<20} {svc.status.value}  {svc.detail}")
    for a in detail.alerts:
        echo(f"  ▲ {a.message}")


@app.command("rm")
@reader
def rm(
    conn: Connection,
    host: Annotated[str, typer.Argument(help="host id")],
    purge: Annotated[
        bool, typer.Option("--purge", help="also delete its history (samples and tiers) now")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Take a decommissioned host out of the fleet: it leaves hosts ls and the overall status,
    its open alerts are resolved and its services dropped; its history is kept until retention
    unless --purge. A host that reports again comes back: this does NOT revoke its agent
    certificate or API key (run `statusdash certs revoke HOST` / `statusdash keys revoke HOST`)."""
    check_host(host)
    with conn.client() as client:
        result = client.remove_host(host, purge)
    if as_json:
        print_json(result)
        return
    alerts = units.count(result["alerts_resolved"], "alert")
    services = units.count(len(result["services"]), "service")
    kept = "history purged" if result["purged"] else "history kept until retention"
    echo(f"removed {host} from the fleet: {alerts} resolved, {services} dropped, {kept}")
    echo(f"  its next report brings it back; `statusdash certs revoke {host}` keeps it out")


@app.command("series")
@reader
def series(
    conn: Connection,
    host: Annotated[str, typer.Argument(help="host id")],
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help='only the series this selector picks: disk.mount.percent{mount=~"/d.*"}',
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every series the host has (labels, unit, first and latest sample); a series whose latest
    sample is old has stopped."""
    from statusdash import selector
    from statusdash.errors import Invalid

    check_host(host)
    if metric:
        try:
            selector.parse(metric)
        except Invalid as exc:
            fail(str(exc))
    with conn.client() as client:
        rows = client.host_series(host, metric)

    def table() -> None:
        print_table(
            ("SERIES", "UNIT", "FIRST", "LAST"),
            (
                (
                    r.metric + _labels(r.labels),
                    r.unit,
                    f"{r.first:%Y-%m-%d %H:%M}",
                    f"{age(r.last)} ago",
                )
                for r in rows
            ),
        )
        typer.echo(units.count(len(rows), "series", "series"))

    print_listing(rows, as_json, f"{host} has no series", table)


def _labels(labels: dict[str, str]) -> str:
    from statusdash.selector import quote

    if not labels:
        return ""
    return "{" + ", ".join(f"{k}={quote(v)}" for k, v in sorted(labels.items())) + "}"
