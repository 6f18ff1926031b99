"""Issue 10, isolation: one agent's report cannot hurt another's (real server, real SQLite)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import ANY

import httpx
import pytest

from statusdash import catalog, wire
from tests.conftest import Live, make_report

GOOD = [f"good-{i}" for i in range(20)]
ROUNDS = 3


def rows_per_host(live: Live) -> dict[str, int]:
    with sqlite3.connect(live.settings.db_path) as conn:
        found = conn.execute(
            "SELECT h.name, count(s.ts) FROM hosts h LEFT JOIN samples s ON s.host_id = h.id"
            " GROUP BY h.name"
        ).fetchall()
    return {name: int(n) for name, n in found}


@contextmanager
def writer_held(live: Live, waiting: int) -> Iterator[None]:
    """Hold SQLite's write lock so the requests queue up and the writer takes them as one group."""
    conn = sqlite3.connect(live.settings.db_path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        queued = live.server.ctx.storage._queue
        deadline = time.monotonic() + 6  # under the writer's 10 s busy timeout
        while queued.qsize() < waiting and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def push_with_poison(live: Live, poison: Callable[[int], dict[str, Any]]) -> list[httpx.Response]:
    """Each round: 20 good agents and the poisoned one post at once, grouped by the writer."""
    clients = {h: live.agent(h) for h in [*GOOD, "poison"]}
    now = datetime.now(UTC)
    answers: list[httpx.Response] = []
    for k in range(ROUNDS):
        at = now - timedelta(seconds=10 * (ROUNDS - k))
        bodies = [(h, make_report(h, at=at)) for h in GOOD] + [("poison", poison(k))]
        with ThreadPoolExecutor(len(bodies)) as pool:
            with writer_held(live, waiting=len(bodies) - 1):
                futures = [
                    pool.submit(clients[h].post, "/api/metrics/report", json=b) for h, b in bodies
                ]
            answers += [f.result() for f in futures]
    return answers


def assert_only_poison_failed(live: Live, answers: list[httpx.Response]) -> None:
    for r in answers:
        assert r.status_code != 500, r.text
    good = [r for r in answers if r.request.headers["x-api-key"] != live.keys["poison"]]
    bad = [r for r in answers if r.request.headers["x-api-key"] == live.keys["poison"]]
    assert [r.json() for r in good] == [{"accepted": 1, "duplicates": 0, "high_water": ANY}] * (
        ROUNDS * len(GOOD)
    )
    assert [r.status_code for r in bad] == [422] * ROUNDS
    assert all(set(r.json()) >= {"error", "detail"} for r in bad)
    counts = rows_per_host(live)
    assert {h: counts.get(h) for h in GOOD} == dict.fromkeys(GOOD, ROUNDS)
    assert counts.get("poison", 0) == 0


def test_a_row_sqlite_refuses_fails_only_its_own_request(live_server: Live) -> None:
    """A sqlite3 error from one row inside the shared transaction: only that request fails."""
    live_server.api_key("poison")
    with sqlite3.connect(live_server.settings.db_path) as conn:
        conn.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON samples"
            " WHEN NEW.host_id IN (SELECT id FROM hosts WHERE name = 'poison')"
            " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
        )
    now = datetime.now(UTC)
    answers = push_with_poison(
        live_server, lambda k: make_report("poison", at=now - timedelta(seconds=10 * k))
    )
    assert_only_poison_failed(live_server, answers)
    assert all("poisoned row" in r.json()["detail"] for r in answers if r.status_code == 422)


def test_a_report_whose_values_do_not_convert_fails_alone(
    live_server: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception converting one request's values (here an OverflowError) stays its own."""
    real = catalog.values

    def values(r: wire.MetricsReport) -> list[float | None]:
        if r.host == "poison":
            raise OverflowError("int too large to convert to float")
        return real(r)

    monkeypatch.setattr(catalog, "values", values)
    now = datetime.now(UTC)
    live_server.api_key("poison")
    answers = push_with_poison(
        live_server, lambda k: make_report("poison", at=now - timedelta(seconds=10 * k))
    )
    assert_only_poison_failed(live_server, answers)


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("processes", "count", 10**400),
        ("processes", "count", wire.MAX_COUNT + 1),
        ("memory", "total", 2**63),
        ("net", "rx_bytes_s", 1e300),
    ],
    ids=["count-1e400", "count-past-1e7", "total-past-int64", "rate-1e300"],
)
def test_numbers_past_what_storage_holds_are_a_422_naming_the_field(
    live_server: Live, section: str, field: str, value: float
) -> None:
    report = make_report("web-1")
    report[section][field] = value
    r = live_server.agent("web-1").post("/api/metrics/report", json=report)
    assert r.status_code == 422, r.text
    assert r.json()["fields"][0]["field"] == f"{section}.{field}"
    assert rows_per_host(live_server).get("web-1", 0) == 0
