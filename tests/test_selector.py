"""The selector parser: PromQL syntax, escapes, anchored RE2 regexes, catalogue checks, and the
column each error points at; Hypothesis for parse(format(s)) == s and the matching semantics."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statusdash.errors import Invalid
from statusdash.selector import (
    MAX_REGEX,
    MAX_VALUE,
    Matcher,
    Op,
    Selector,
    format_selector,
    parse,
)

CATALOGUE = {
    "cpu.percent": (),
    "load.1m": (),
    "disk.mount.percent": ("mount",),
    "process.cpu_percent": ("process",),
}


def test_the_four_operators_and_whitespace() -> None:
    sel = parse('disk.mount.percent{ a="/data", b != "x" ,c=~"re.*",d!~"a|b", }')
    assert sel == Selector(
        "disk.mount.percent",
        (
            Matcher("a", Op.eq, "/data"),
            Matcher("b", Op.ne, "x"),
            Matcher("c", Op.re, "re.*"),
            Matcher("d", Op.nre, "a|b"),
        ),
    )
    assert parse("cpu.percent") == Selector("cpu.percent")
    assert parse("cpu.percent{}") == Selector("cpu.percent")
    assert parse("  load.1m  ") == Selector("load.1m")


def test_promql_escapes_and_single_quotes() -> None:
    sel = parse(r'm{a="q\"uote", b="back\\slash", c="new\nline", d=' + "'it\\'s'}")
    assert [m.value for m in sel.matchers] == ['q"uote', "back\\slash", "new\nline", "it's"]
    assert parse(format_selector(sel)) == sel


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("", 1, "a metric name"),
        ("9cpu", 1, "a metric name"),
        ('m{mount="/"', 12, "',' or '}'"),
        ("m{mount}", 8, "one of =, !=, =~, !~"),
        ("m{mount=/}", 9, "a quoted string"),
        ('m{mount="/', 11, 'a closing "'),
        ('m{mount="\\q"}', 11, "an escape"),
        ("m{", 3, "a label name or '}'"),
        ('m{1a="x"}', 3, "a label name"),
        ('m{a="x"} extra', 10, "the end"),
        ("m x", 3, "'{' or the end"),
        ('m{a="x" b="y"}', 9, "',' or '}'"),
    ],
)
def test_syntax_errors_name_the_column_and_what_was_expected(
    text: str, column: int, expected: str
) -> None:
    with pytest.raises(Invalid) as err:
        parse(text)
    message = str(err.value)
    assert f"column {column}:" in message and f"expected {expected}" in message


def test_the_catalogue_refuses_unknown_metrics_and_labels() -> None:
    assert parse('disk.mount.percent{mount="/"}', CATALOGUE).metric == "disk.mount.percent"
    with pytest.raises(Invalid, match=r"column 1: no metric 'disk\.nope'.*known metrics"):
        parse("disk.nope", CATALOGUE)
    with pytest.raises(Invalid, match=r"column 20: no label 'device'; its labels: mount"):
        parse('disk.mount.percent{device="sda"}', CATALOGUE)
    with pytest.raises(Invalid, match="host-level series"):
        parse('cpu.percent{core="0"}', CATALOGUE)


def test_regexes_are_capped_checked_and_values_bounded() -> None:
    parse('m{a=~"' + "a" * MAX_REGEX + '"}')
    with pytest.raises(Invalid, match=f"at most {MAX_REGEX}"):
        parse('m{a=~"' + "a" * (MAX_REGEX + 1) + '"}')
    with pytest.raises(Invalid, match="at most 10"):
        parse('m{a=~"' + "a" * 11 + '"}', max_regex=10)
    with pytest.raises(Invalid, match=r"column 6: bad regex for a"):
        parse('m{a=~"(unclosed"}')
    with pytest.raises(Invalid, match="bad regex"):  # RE2 has no backreferences
        parse(r'm{a=~"(x)\\1"}')
    with pytest.raises(Invalid, match=f"at most {MAX_VALUE}"):
        parse('m{a="' + "v" * (MAX_VALUE + 1) + '"}')


def test_regexes_are_anchored_and_a_missing_label_is_empty() -> None:
    sel = parse('m{mount=~"/data"}')
    assert sel.matches({"mount": "/data"})
    assert not sel.matches({"mount": "/data2"}) and not sel.matches({"mount": "/x/data"})
    assert parse('m{mount=~"/d.*"}').matches({"mount": "/data2"})
    assert parse('m{mount!~"/d.*"}').matches({"mount": "/"})
    assert parse('m{other=""}').matches({"mount": "/"})
    assert not parse('m{other!=""}').matches({"mount": "/"})
    assert parse('m{other=~".*"}').matches({})


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    sel = parse('m{p=~"(a|a)*(a*)*b"}')
    t0 = time.process_time()
    assert not sel.matches({"p": "a" * MAX_VALUE + "c"})
    # Backtracking engines take minutes on this; RE2 answers at once (a bound, not a figure).
    assert time.process_time() - t0 < 1.0


# --- properties ---------------------------------------------------------------------------------

names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_.:]{0,20}", fullmatch=True)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True)
values = st.text(max_size=40)
# Regexes both engines read the same way: literals, classes, dots, stars, alternation, groups.
atoms = st.sampled_from(["a", "b", "ab", ".", "[ab]", "[^a]", "(a|b)", "x"])
regexes = st.lists(
    st.tuples(atoms, st.sampled_from(["", "*", "+", "?"])), min_size=1, max_size=5
).map(lambda parts: "".join(a + q for a, q in parts))
eq_matchers = st.builds(Matcher, label_names, st.sampled_from([Op.eq, Op.ne]), values)
re_matchers = st.builds(Matcher, label_names, st.sampled_from([Op.re, Op.nre]), regexes)
selectors = st.builds(Selector, names, st.lists(eq_matchers | re_matchers, max_size=6).map(tuple))


@given(selectors)
def test_parse_of_format_is_identity(sel: Selector) -> None:
    assert parse(format_selector(sel)) == sel


def _reference(m: Matcher, labels: dict[str, str]) -> bool:
    have = labels.get(m.label, "")
    if m.op is Op.eq:
        return have == m.value
    if m.op is Op.ne:
        return have != m.value
    hit = re.fullmatch(m.value, have, flags=re.DOTALL) is not None
    return hit if m.op is Op.re else not hit


few_labels = st.sampled_from(["a", "b", "mount"])
label_sets = st.dictionaries(few_labels, st.text(alphabet="abx\n", max_size=6), max_size=3)
matchers_on_few = st.builds(
    Matcher, few_labels, st.sampled_from([Op.eq, Op.ne]), st.text(alphabet="abx\n", max_size=3)
) | st.builds(Matcher, few_labels, st.sampled_from([Op.re, Op.nre]), regexes)


@given(st.lists(matchers_on_few, max_size=4), label_sets)
def test_matching_agrees_with_a_reference(matchers: list[Matcher], labels: dict[str, str]) -> None:
    sel = Selector("m", tuple(matchers))
    assert sel.matches(labels) == all(_reference(m, labels) for m in matchers)
