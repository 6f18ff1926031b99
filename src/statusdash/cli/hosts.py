"""``statusdash hosts ls|show|rm|tag|series``: the fleet from the server's read API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from statusdash import tagtext, units
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
    tagged = any(h.tags for h in rows)  # the TAGS column only for a fleet that has tags
    print_table(
        (*columns, "TAGS") if tagged else columns,
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
                *([tagtext.show(h.tags) or "-"] if tagged else []),
            )
            for h in rows
        ),
    )
    typer.echo(units.count(len(rows), "host"))


TagFilterOpt = Annotated[
    list[str] | None,
    typer.Option("--tag", help="KEY=VALUE: only hosts with this tag (repeat: all of them)"),
]


def _pairs(pairs: list[str], *, allow_empty: bool = False) -> dict[str, str]:
    try:
        return tagtext.parse_pairs(pairs, allow_empty=allow_empty)
    except tagtext.TagError as exc:
        fail(str(exc))


@app.command("ls")
@reader
def ls(conn: Connection, tag: TagFilterOpt = None, as_json: JsonOpt = False) -> None:
    """List every host with its latest summary, status (up, stale, down) and tags."""
    want = _pairs(tag or [])
    with conn.client() as client:
        rows = client.hosts(want)
        table = lambda: _table(rows, _thresholds(client))  # noqa: E731
        empty = f"no host has the tags {tagtext.show(want)}" if want else "no host has reported yet"
        print_listing(rows, as_json, empty, table)


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
    for key, t in detail.tags.items():
        was = f" (agent said {t.agent_value})" if t.agent_value is not None else ""
        echo(f"  tag {key}={t.value}  from {t.source}{was}")
    for key in detail.tags_blocked:
        echo(f"  tag {key} blocked by the server")
    for a in detail.alerts:
        echo(f"  ▲ {a.message}")


@app.command("tag")
@reader
def tag(
    conn: Connection,
    host: Annotated[str, typer.Argument(help="host id")],
    pairs: Annotated[
        list[str] | None,
        typer.Argument(help="KEY=VALUE server tags to set; KEY= blocks the agent's KEY"),
    ] = None,
    rm: Annotated[
        list[str] | None,
        typer.Option("--rm", help="KEY: drop the server's tag (the agent's value counts again)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set server tags of a host: they win over the tags its agent declares (docs/tags.md)."""
    check_host(host)
    put = _pairs(pairs or [], allow_empty=True)
    remove = rm or []
    for key in remove:
        try:
            tagtext.check_key(key)
        except tagtext.TagError as exc:
            fail(f"--rm: {exc}")
    if not put and not remove:
        fail("nothing to change: give KEY=VALUE pairs and/or --rm KEY")
    with conn.client() as client:
        result = client.set_tags(host, put, remove)
    if as_json:
        print_json(result)
        return
    tags = result["tags"]
    shown = ", ".join(f"{k}={v['value']} ({v['source']})" for k, v in tags.items()) or "none"
    echo(f"{host}: tags {shown}")
    if result["tags_blocked"]:
        echo(f"  blocked: {', '.join(result['tags_blocked'])}")


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
