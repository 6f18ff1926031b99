"""``statusdash history HOST METRIC``: one series from ``GET /api/hosts/{id}/history``.

In a terminal: a sparkline over the range with min, avg and max in the series' unit. Piped: a
plain table, one bucket a row. ``--json``: the API's answer as it came (its ``points`` are the
buckets: start time, avg, min, max, sample count).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from statusdash import units
from statusdash.cli.boundary import fail
from statusdash.cli.common import Connection, JsonOpt, check_host, echo, print_json, reader

if TYPE_CHECKING:
    from statusdash.schema import HistorySeries

CHART_MARGIN = 2  # columns left free at the right of the sparkline


@reader
def history(
    conn: Connection,
    host: Annotated[str, typer.Argument(help="host id")],
    metric: Annotated[
        str, typer.Argument(help="series name, e.g. cpu.percent (the server lists them)")
    ],
    since: Annotated[
        str, typer.Option("--since", help="start: ISO-8601 time or a duration back (15m, 24h)")
    ] = "24h",
    until: Annotated[
        str | None, typer.Option("--until", help="end, as --since (default: now)")
    ] = None,
    points: Annotated[
        int | None,
        typer.Option("--points", min=1, help="most buckets wanted (default: the chart's width)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A metric's history: a chart in a terminal, a table when piped, the buckets with --json."""
    check_host(host)
    chart = sys.stdout.isatty() and not as_json
    width = _chart_width() if chart else 0
    with conn.client() as client:
        known = client.history_metrics()
        name = metric.split("{", 1)[0]
        if name not in known:
            fail(f"no metric {metric!r}; the server keeps: {', '.join(sorted(known))}")
        wanted = points if points is not None else (width if chart else None)
        kw: dict[str, Any] = {} if wanted is None else {"points": wanted}
        series = client.history(host, metric, since=since, until=until, **kw)
    unit = str(known[name].get("unit", ""))
    if as_json:
        print_json(series.model_dump(mode="json"))
    elif chart:
        _chart(series, unit, width)
    else:
        _table(series, unit)


def _chart_width() -> int:
    import shutil

    return max(10, shutil.get_terminal_size().columns - CHART_MARGIN)


def _span(series: HistorySeries) -> str:
    from statusdash.durations import humanize

    a, b = series.since, series.until
    length = humanize((b - a).total_seconds())
    step = humanize(series.bucket_s)
    return f"{a:%Y-%m-%d %H:%M} → {b:%Y-%m-%d %H:%M} UTC ({length}, a bucket every {step})"


def _chart(series: HistorySeries, unit: str, width: int) -> None:
    """Title, the sparkline (gaps where no data), then min, avg and max of the range."""
    from statusdash.tui import fmt

    echo(f"{series.host} {series.metric}  {_span(series)}")
    if not series.points:
        typer.echo("no data in this range")
        return
    columns = max(1, round((series.until - series.since).total_seconds() / series.bucket_s))
    slots: list[float | None] = [None] * columns
    for p in series.points:
        i = int((p.t - series.since).total_seconds() // series.bucket_s)
        slots[min(max(i, 0), columns - 1)] = p.avg
    for i in range(1, columns - 1):  # a bucket finer than the data's step: not a gap
        before, after = slots[i - 1], slots[i + 1]
        if slots[i] is None and before is not None and after is not None:
            slots[i] = (before + after) / 2
    lo = min(p.min for p in series.points)
    hi = max(p.max for p in series.points)
    top = 100.0 if unit == "%" else fmt.nice_ceiling(hi)
    typer.echo(fmt.sparkline(fmt.resample(slots, min(width, columns)), width, top=top).rstrip())
    scale = "100%" if unit == "%" else units.value(top, unit)
    n = sum(p.count for p in series.points)
    avg = sum(p.avg * p.count for p in series.points) / n if n else None
    typer.echo(
        f"min {units.value(lo, unit)}  avg {units.value(avg, unit)}  max {units.value(hi, unit)}"
        f"  ({units.count(n, 'sample')}, scale 0-{scale})"
    )


def _table(series: HistorySeries, unit: str) -> None:
    """One bucket a row, plain columns for scripts (the unit in the header)."""
    suffix = f"[{unit}]" if unit else ""
    typer.echo(f"TIME AVG{suffix} MIN{suffix} MAX{suffix} SAMPLES")
    for p in series.points:
        typer.echo(f"{p.t.isoformat()} {p.avg:g} {p.min:g} {p.max:g} {p.count}")
