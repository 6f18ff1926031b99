"""Series selectors in Prometheus' syntax: ``metric{label="v", l2!="x", l3=~"re.*", l4!~"a|b"}``.

Pure: the CLI checks a selector with it before sending, the server parses and matches with it.
Strings take PromQL's escapes (``\\"``, ``\\\\``, ``\\n``, ``\\t``); a string may be quoted with
``"`` or ``'``. Regexes are RE2 (as Prometheus'), fully anchored, and capped in length, so no
pattern can take more than linear time against a label value. See docs/series.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

import re2

from statusdash.errors import Invalid

MAX_REGEX = 1024
"""Longest regex a matcher may carry anywhere; the server's SELECTOR_MAX_REGEX (256 by default)
is the limit it enforces, at most this."""
MAX_VALUE = 255
"""Longest label value (a label value past it can never be stored, so never matched)."""
MAX_TEXT = 4096
"""Longest selector text."""
MAX_MATCHERS = 16
"""Most matchers in one selector."""

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "`": "`"}
_FORMAT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


class Op(StrEnum):
    eq = "="
    ne = "!="
    re = "=~"
    nre = "!~"


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 1 << 20
    options.dot_nl = True  # as Prometheus 3: '.' matches a newline too
    return re2.compile(pattern, options)


@dataclass(frozen=True)
class Matcher:
    label: str
    op: Op
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """PromQL semantics: a missing label is the empty string; regexes match whole values."""
        have = labels.get(self.label, "")
        if self.op is Op.eq:
            return have == self.value
        if self.op is Op.ne:
            return have != self.value
        hit = _compiled(self.value).fullmatch(have) is not None
        return hit if self.op is Op.re else not hit


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...] = field(default=())

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        return format_selector(self)


def quote(value: str) -> str:
    """A PromQL double-quoted string whose parse is ``value``."""
    return '"' + "".join(_FORMAT_ESCAPES.get(c, c) for c in value) + '"'


def format_selector(sel: Selector) -> str:
    """The canonical text of ``sel``: ``parse(format_selector(s)) == s``."""
    if not sel.matchers:
        return sel.metric
    inner = ", ".join(f"{m.label}{m.op.value}{quote(m.value)}" for m in sel.matchers)
    return f"{sel.metric}{{{inner}}}"


class _Parser:
    def __init__(
        self, text: str, max_regex: int, catalogue: Mapping[str, Sequence[str]] | None
    ) -> None:
        self.text = text
        self.pos = 0
        self.max_regex = max_regex
        self.catalogue = catalogue
        self.labels: Sequence[str] | None = None  # the metric's, once known

    def fail(self, expected: str, at: int | None = None) -> Invalid:
        at = self.pos if at is None else at
        found = repr(self.text[at]) if at < len(self.text) else "the end"
        return Invalid(f"selector: column {at + 1}: expected {expected}, found {found}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def take(self, pattern: re.Pattern[str], expected: str) -> str:
        found = pattern.match(self.text, self.pos)
        if found is None:
            raise self.fail(expected)
        self.pos = found.end()
        return found.group()

    def op(self) -> Op:
        for op in (Op.re, Op.nre, Op.ne, Op.eq):  # two-character operators first
            if self.text.startswith(op.value, self.pos):
                self.pos += len(op.value)
                return op
        raise self.fail("one of =, !=, =~, !~")

    def string(self) -> str:
        if self.pos >= len(self.text) or self.text[self.pos] not in "\"'":
            raise self.fail("a quoted string")
        quote_char = self.text[self.pos]
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.fail(f"a closing {quote_char}")
            c = self.text[self.pos]
            if c == quote_char:
                self.pos += 1
                return "".join(out)
            if c == "\n":
                raise self.fail(f"a closing {quote_char} before the end of the line")
            if c == "\\":
                nxt = self.text[self.pos + 1 : self.pos + 2]
                if nxt not in _ESCAPES:
                    raise self.fail("an escape: \\\\, \\\", \\', \\n, \\t or \\r", self.pos + 1)
                out.append(_ESCAPES[nxt])
                self.pos += 2
                continue
            out.append(c)
            self.pos += 1

    def matcher(self) -> Matcher:
        at = self.pos
        label = self.take(_LABEL, "a label name")
        if self.labels is not None and label not in self.labels:
            has = ", ".join(self.labels) if self.labels else "none (a host-level series)"
            raise Invalid(f"selector: column {at + 1}: no label {label!r}; its labels: {has}")
        self.skip_space()
        op = self.op()
        self.skip_space()
        start = self.pos
        value = self.string()
        if op in (Op.re, Op.nre):
            if len(value) > self.max_regex:
                raise Invalid(
                    f"selector: column {start + 1}: the regex for {label} is {len(value)}"
                    f" characters; at most {self.max_regex}"
                )
            try:
                _compiled(value)
            except re2.error as exc:
                why = exc.args[0] if exc.args else exc
                why = why.decode() if isinstance(why, bytes) else str(why)
                raise Invalid(
                    f"selector: column {start + 1}: bad regex for {label}: {why}"
                ) from None
        elif len(value) > MAX_VALUE:
            raise Invalid(
                f"selector: column {start + 1}: the value for {label} is {len(value)}"
                f" characters; label values are at most {MAX_VALUE}"
            )
        return Matcher(label, op, value)

    def selector(self) -> Selector:
        self.skip_space()
        at = self.pos
        metric = self.take(_NAME, "a metric name such as disk.mount.percent")
        if self.catalogue is not None:
            if metric not in self.catalogue:
                known = ", ".join(sorted(self.catalogue))
                raise Invalid(
                    f"selector: column {at + 1}: no metric {metric!r}; known metrics: {known}"
                )
            self.labels = self.catalogue[metric]
        self.skip_space()
        matchers: list[Matcher] = []
        if self.pos < len(self.text) and self.text[self.pos] == "{":
            self.pos += 1
            self.skip_space()
            while self.pos < len(self.text) and self.text[self.pos] != "}":
                matchers.append(self.matcher())
                self.skip_space()
                if self.pos < len(self.text) and self.text[self.pos] == ",":
                    self.pos += 1
                    self.skip_space()
                elif self.pos >= len(self.text) or self.text[self.pos] != "}":
                    raise self.fail("',' or '}'")
            if self.pos >= len(self.text):
                raise self.fail("a label name or '}'")
            self.pos += 1
            self.skip_space()
        if self.pos != len(self.text):
            raise self.fail("'{' or the end" if not matchers else "the end")
        if len(matchers) > MAX_MATCHERS:
            raise Invalid(f"selector: {len(matchers)} matchers; at most {MAX_MATCHERS}")
        return Selector(metric, tuple(matchers))


def parse(
    text: str,
    catalogue: Mapping[str, Sequence[str]] | None = None,
    *,
    max_regex: int = MAX_REGEX,
) -> Selector:
    """A selector from its text; ``Invalid`` naming the column and what was expected.

    With ``catalogue`` (metric name -> its label names), an unknown metric or a label the
    metric does not have is refused too.
    """
    if len(text) > MAX_TEXT:
        raise Invalid(f"selector: {len(text)} characters; at most {MAX_TEXT}")
    return _Parser(text, max_regex, catalogue).selector()
