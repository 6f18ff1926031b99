"""The pure parts of ``server/series_query``: which series a selector picks, in what order, the
answer's shape (one series, a capped set), and the 404's list of what exists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from statusdash.schema import HistoryPoint, HistorySet, LabelledHistory
from statusdash.selector import parse
from statusdash.server import series_query

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Ref:
    id: int
    metric: str
    labels: Mapping[str, str]
    unit: str
    first: datetime
    last: datetime


def _ref(i: int, mount: str, first_h: float = 0, last_h: float = 10) -> Ref:
    return Ref(
        i,
        "disk.mount.percent",
        {"mount": mount},
        "%",
        T0 + timedelta(hours=first_h),
        T0 + timedelta(hours=last_h),
    )


REFS = [_ref(1, "/var"), _ref(2, "/"), _ref(3, "/data", 0, 2), _ref(4, "/boot")]


def _read(refs: Sequence[Ref]) -> dict[int, list[HistoryPoint]]:
    return {r.id: [HistoryPoint(t=r.first, avg=r.id, min=r.id, max=r.id, count=1)] for r in refs}


def test_pick_sorts_by_labels_and_ignores_other_metrics() -> None:
    other = Ref(9, "disk.mount.used_bytes", {"mount": "/"}, "B", T0, T0)
    picked = series_query.pick([*REFS, other], parse("disk.mount.percent"))
    assert [r.labels["mount"] for r in picked] == ["/", "/boot", "/data", "/var"]


def test_one_series_with_matchers_is_labelled_history() -> None:
    sel = parse('disk.mount.percent{mount="/data"}')
    got = series_query.shape(
        "h", "x", sel, series_query.pick(REFS, sel), T0, T0 + timedelta(hours=1), 10, 50, _read
    )
    assert isinstance(got, LabelledHistory)
    assert got.labels == {"mount": "/data"} and got.points[0].avg == 3
    assert got.bucket_s == 360


def test_a_set_keeps_series_in_range_and_caps() -> None:
    sel = parse("disk.mount.percent")
    start, end = T0 + timedelta(hours=5), T0 + timedelta(hours=6)
    got = series_query.shape("h", "x", sel, series_query.pick(REFS, sel), start, end, 10, 2, _read)
    assert isinstance(got, HistorySet)
    assert [s.labels["mount"] for s in got.series] == ["/", "/boot"]  # /data stopped at 2 h
    assert got.total == 3 and got.truncated and got.unit == "%"
    assert got.selector == "disk.mount.percent"


def test_nothing_matched_lists_the_label_sets() -> None:
    err = series_query.nothing_matched(
        "h", 'disk.mount.percent{mount="/x"}', "disk.mount.percent", REFS
    )
    assert str(err) == (
        "no disk.mount.percent series of host 'h' matches disk.mount.percent{mount=\"/x\"};"
        ' it has {mount="/"}, {mount="/boot"}, {mount="/data"}, {mount="/var"}'
    )
    many = [_ref(i, f"/m{i:02}") for i in range(25)]
    assert str(series_query.nothing_matched("h", "s", "disk.mount.percent", many)).endswith(
        "and 5 more"
    )
    assert "has no disk.mount.percent series" in str(
        series_query.nothing_matched("h", "s", "disk.mount.percent", [])
    )
