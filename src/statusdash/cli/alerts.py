"""``statusdash alerts ls|ack|resolve|silence|silences|unsilence|test-notify``: the alert
lifecycle from the shell."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from statusdash import durations, tagtext
from statusdash.cli.boundary import fail, group
from statusdash.cli.common import (
    Connection,
    JsonOpt,
    age,
    echo,
    print_json,
    print_listing,
    print_table,
    reader,
)

if TYPE_CHECKING:
    from statusdash.schema import AlertPublic

app = group(help="Alerts: list, acknowledge, resolve, silence, test the webhooks.")
RULES = ("cpu", "memory", "disk", "offline", "service", "event")
MARK = {"firing": "▲", "pending": "△", "resolved": "✓"}


def _table(rows: list[AlertPublic]) -> None:
    columns = ("", "ID", "STATE", "SEVERITY", "HOST", "RULE", "SUBJECT", "SINCE", "ACK", "MESSAGE")
    print_table(
        columns,
        (
            (
                MARK.get(a.state.value, " "),
                str(a.id),
                a.state.value,
                a.severity,
                a.host,
                a.rule,
                a.subject or "-",
                age(a.fired_at or a.started_at),
                a.acked_by or "-",
                a.message,
            )
            for a in rows
        ),
        width=200,
    )


@app.command("ls")
@reader
def ls(
    conn: Connection,
    show_all: Annotated[bool, typer.Option("--all", help="resolved alerts too")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Active alerts (pending and firing); with --all the resolved ones too."""
    with conn.client() as client:
        rows = client.alerts("all" if show_all else "active")
    empty = "no alerts" if show_all else "no active alerts"
    print_listing(rows, as_json, empty, lambda: _table(rows))


@app.command("ack")
@reader
def ack(
    conn: Connection,
    alert_id: Annotated[int, typer.Argument(help="alert id (from alerts ls)", min=1)],
    as_json: JsonOpt = False,
) -> None:
    """Acknowledge an open alert: it stays until it resolves, marked as seen."""
    with conn.client() as client:
        body = client.request("POST", f"/api/alerts/{alert_id}/ack")
    if as_json:
        print_json(body)
    else:
        echo(f"acknowledged alert {alert_id}: {body.get('message', '')}")


def _target(target: str) -> dict[str, str]:
    name, sep, value = target.partition("=")
    if sep:
        if name not in ("host", "rule") or not value:
            fail(f"{target!r}: use HOST, RULE, host=GLOB or rule=NAME", 2)
        return {name: value}
    return {"rule": target} if target in RULES else {"host": target}


@app.command("silence")
@reader
def silence(
    conn: Connection,
    target: Annotated[
        str, typer.Argument(help="a host id or glob (web-*), or a rule: " + ", ".join(RULES))
    ],
    for_: Annotated[str, typer.Option("--for", help="how long: 30m, 2h, 1d")] = "2h",
    subject: Annotated[
        str | None, typer.Option("--subject", help="only this mount or service")
    ] = None,
    comment: Annotated[str, typer.Option("--comment", help="why, for the others")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Mute the notifications of a host's (or a rule's) alerts for a while."""

    try:
        seconds = durations.parse(for_)
    except ValueError as exc:
        fail(f"--for: {exc}", 2)
    if seconds <= 0:
        fail("--for must be longer than 0 s", 2)
    body: dict[str, Any] = {**_target(target), "for": seconds, "comment": comment}
    if subject:
        body["subject"] = subject
    from statusdash.client import ApiError, ClientError

    with conn.client() as client:
        try:
            made = client.request("POST", "/api/alerts/silences", json=body)
        except ApiError as exc:
            if "host" in body and "=" not in target and exc.detail.startswith("no host matches"):
                raise ClientError(f"{exc.detail}; a rule is one of: {', '.join(RULES)}") from None
            raise
    if as_json:
        print_json(made)
        return
    what = " ".join(f"{k} {made[k]}" for k in ("host", "rule", "subject") if made.get(k))
    echo(f"silenced {what} until {made['expires_at']} (silence {made['id']})")


@app.command("silences")
@reader
def silences(
    conn: Connection,
    as_json: JsonOpt = False,
) -> None:
    """Silences in force."""
    with conn.client() as client:
        rows = client.request("GET", "/api/alerts/silences")
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no silences in force")
    for s in rows:
        what = " ".join(f"{k}={s[k]}" for k in ("host", "rule", "subject") if s.get(k))
        by = f"by {s['created_by']}"
        echo(f"{s['id']:>4}  {what}  until {s['expires_at']}  {by}  {s['comment']}".rstrip())


@app.command("resolve")
@reader
def resolve(
    conn: Connection,
    alert_id: Annotated[int, typer.Argument(help="alert id (from alerts ls)", min=1)],
    reason: Annotated[str, typer.Option("--reason", help="why, kept on the alert")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Resolve an open alert by hand (who and why are kept). A threshold that still holds
    opens a new alert at its next report: silence it to keep it quiet."""
    with conn.client() as client:
        a = client.resolve_alert(alert_id, reason)
    if as_json:
        print_json(a.model_dump(mode="json"))
    else:
        echo(f"resolved alert {alert_id}: {a.message}")


@app.command("unsilence")
@reader
def unsilence(
    conn: Connection,
    silence_id: Annotated[int, typer.Argument(help="silence id (from alerts silences)", min=1)],
    as_json: JsonOpt = False,
) -> None:
    """End a silence now; the notices it held back are sent."""
    with conn.client() as client:
        s = client.unsilence(silence_id)
    if as_json:
        print_json(s)
        return
    what = " ".join(f"{k}={s[k]}" for k in ("host", "rule", "subject") if s.get(k))
    echo(f"ended silence {silence_id} ({what})")


@app.command("test-notify")
@reader
def test_notify(
    conn: Connection,
    as_json: JsonOpt = False,
) -> None:
    """Send a test message to every webhook the server has; exit 1 if any delivery fails."""
    with conn.client(timeout=60.0) as client:
        result = client.request("POST", "/api/alerts/test-notify")
    if as_json:
        print_json(result)
    else:
        for t in result["targets"]:
            state = "ok" if t["ok"] else f"FAILED: {t['error']}"
            echo(f"{t['target']}  {state}")
    if not result["ok"]:
        raise typer.Exit(1)


if TYPE_CHECKING:
    from statusdash.schema import RuleInForce, RulesInForce


def _rule_rows(body: RulesInForce, host: str | None) -> list[tuple[str, ...]]:
    """One row per rule and scope: every host first (``*``), then each host's own."""

    def row(scope: str, rule: str, subject: str, r: RuleInForce) -> tuple[str, ...]:
        threshold = f"{r.threshold:g}" + ("%" if rule in ("cpu", "memory", "disk") else "")
        clear = f"{r.clear:g}" + ("%" if rule in ("cpu", "memory", "disk") else "")
        origin = r.source + (f" #{','.join(str(i) for i in r.overrides)}" if r.overrides else "")
        return (
            scope,
            rule,
            subject or "-",
            "on" if r.enabled else "off",
            threshold,
            clear,
            durations.humanize(r.for_s) if r.for_s else "0s",
            r.severity,
            origin,
            tagtext.show(r.tags) or "-",
        )

    rows = [] if host else [row("*", name, "", r) for name, r in body.rules.items()]
    for name, h in body.hosts.items():
        if host and name != host:
            continue
        rows += [row(name, rule, "", r) for rule, r in h.rules.items()]
        rows += [row(name, "disk", mount, r) for mount, r in h.disks.items()]
        rows += [row(name, "service", svc, r) for svc, r in h.services.items()]
    return rows


@app.command("rules")
@reader
def rules(
    conn: Connection,
    host: Annotated[str | None, typer.Option("--host", help="only this host's rules")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The rules the server judges with: for every host, then per host, mount and service."""
    with conn.client() as client:
        body = client.alert_rules()
    if host and host not in body.hosts:
        known = ", ".join(sorted(body.hosts)) or "none"
        fail(f"no host named {host!r} has reported (hosts: {known})")
    if as_json:
        print_json(body.model_dump(mode="json"))
        return
    echo(f"rules file: {body.file or 'none (the CPU/MEMORY/DISK_THRESHOLD defaults)'}")
    if body.reload_error:
        echo(f"last reload failed; the rules below stay in force: {body.reload_error}")
    columns = ("HOST", "RULE", "SUBJECT", "ON", "AT", "CLEARS", "FOR", "SEVERITY", "FROM", "TAGS")
    print_table(columns, _rule_rows(body, host), width=200)
