"""``MetricsReport.tags`` and the tag rule (``statusdash.tagtext``): bounded on both sides."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from statusdash import tagtext, wire
from tests.conftest import make_report


def decode(tags: Any) -> wire.MetricsReport:
    body = wire.encode(wire.convert(make_report("web-1")))  # a valid report, then tags
    report = wire.to_builtins(wire.decode_report(body, now=datetime.now(UTC), max_age=None))
    report["tags"] = tags
    import json

    return wire.decode_report(json.dumps(report), now=datetime.now(UTC), max_age=None)


@pytest.mark.parametrize(
    "tags",
    [
        {"r": "x"},
        {"a" + "b" * 62: "x"},  # 63: the longest key
        {"role.db_x-1": "v" * 128},  # the longest value
        {f"k{i}": "v" for i in range(32)},  # the most tags
        {},
    ],
)
def test_tags_within_bounds_are_kept(tags: dict[str, str]) -> None:
    assert decode(tags).tags == tags


@pytest.mark.parametrize(
    "tags",
    [
        {"": "x"},
        {"a" + "b" * 63: "x"},  # 64
        {"1st": "x"},
        {"Role": "x"},
        {"role\n": "x"},
        {"ro le": "x"},
        {"role": ""},
        {"role": "v" * 129},
        {f"k{i}": "v" for i in range(33)},
        ["role=db"],
    ],
)
def test_tags_out_of_bounds_are_refused_naming_the_field(tags: Any) -> None:
    with pytest.raises(wire.WireError) as exc:
        decode(tags)
    assert exc.value.path.startswith("tags"), exc.value


def test_a_report_without_tags_has_none() -> None:
    assert wire.convert(make_report("web-1")).tags == {}


def test_tagtext_parsing() -> None:
    assert tagtext.parse_pairs(["role=db", " dc = fra ", "role=web"]) == {
        "role": "web",
        "dc": "fra",
    }
    assert tagtext.parse_pairs(["maint="], allow_empty=True) == {"maint": ""}
    for bad, words in [("role", "KEY=VALUE"), ("=x", "tag key"), ("maint=", "empty"),
                       ("a=" + "x" * 129, "at most 128"), ("a=b\tc", "control")]:  # fmt: skip
        with pytest.raises(tagtext.TagError, match=words):
            tagtext.parse_pair(bad)
    with pytest.raises(tagtext.TagError, match="at most 32"):
        tagtext.parse_pairs([f"k{i}=v" for i in range(33)])
    assert tagtext.matches({"a": "1", "b": "2"}, {"a": "1"})
    assert not tagtext.matches({"a": "1"}, {"a": "1", "b": "2"})
    assert tagtext.show({"b": "2", "a": "1"}) == "a=1,b=2"
