"""``statusdash history HOST METRIC``: series from ``GET /api/hosts/{id}/history``.

METRIC is a series name or a selector (``'disk.mount.percent{mount="/"}'``, docs/series.md),
checked here against the server's catalogue before it is sent. A selector or a labelled metric
that picks several series prints one block per series (title line, then its chart or rows).

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
    from statusdash.schema import HistorySeries, HistorySet

CHART_MARGIN = 2  # columns left free at the right of the sparkline


@reader
def history(
    conn: Connection,
    host: Annotated[str, typer.Argument(help="host id")],
    metric: Annotated[
        str,
        typer.Argument(
            help='series name or selector, e.g. cpu.percent or disk.mount.percent{mount="/"}'
        ),
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
    from statusdash import selector
    from statusdash.errors import Invalid
    from statusdash.schema import HistorySet

    check_host(host)
    try:
        sel = selector.parse(metric)
    except Invalid as exc:
        fail(str(exc))
    chart = sys.stdout.isatty() and not as_json
    width = _chart_width() if chart else 0
    with conn.client() as client:
        known = client.history_metrics()
        if sel.metric not in known:
            fail(f"no metric {metric!r}; the server keeps: {', '.join(sorted(known))}")
        try:
            selector.parse(metric, {n: tuple(e.get("labels", ())) for n, e in known.items()})
        except Invalid as exc:
            fail(str(exc))
        wanted = points if points is not None else (width if chart else None)
        kw: dict[str, Any] = {} if wanted is None else {"points": wanted}
        answer = client.select_history(host, metric, since=since, until=until, **kw)
    unit = str(known[sel.metric].get("unit", ""))
    if as_json:
        print_json(answer.model_dump(mode="json"))
    elif isinstance(answer, HistorySet):
        _blocks(answer, unit, width if chart else 0)
    elif chart:
        _chart(answer, unit, width)
    else:
        _table(answer, unit)


def _blocks(answer: HistorySet, unit: str, width: int) -> None:
    """One block per series: a chart in a terminal (``width``), rows when piped (0)."""
    from statusdash.schema import LabelledHistory

    if not answer.series:
        typer.echo(f"no {answer.selector} series has data in this range")
    for i, s in enumerate(answer.series):
        if i and width:
            typer.echo("")
        one = LabelledHistory(
            host=answer.host,
            metric=answer.metric,
            labels=s.labels,
            since=answer.since,
            until=answer.until,
            bucket_s=answer.bucket_s,
            tier=answer.tier or "raw",
            points=s.points,
        )
        if width:
            _chart(one, unit, width)
        else:
            echo(f"# {_title(one)}")
            _table(one, unit)
    if answer.truncated:
        typer.echo(
            f"showing {len(answer.series)} of {answer.total} series (the server's"
            " HISTORY_MAX_SERIES); narrow the selector to see the others"
        )


def _title(series: HistorySeries) -> str:
    """``web-1 disk.mount.percent{mount="/"}``: the host and the series with its labels."""
    from statusdash.selector import quote

    labels: dict[str, str] = getattr(series, "labels", {})
    inner = ", ".join(f"{k}={quote(v)}" for k, v in sorted(labels.items()))
    return f"{series.host} {series.metric}" + (f"{{{inner}}}" if labels else "")


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

    echo(f"{_title(series)}  {_span(series)}")
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
