"""``statusdash enroll``: bootstrap tokens and approvals, run on the server host (its data dir).

Like ``statusdash keys``, these write the server's database directly; the running server reads
the tables on every request, so a new or revoked token counts at once (docs/trust.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from statusdash.cli.boundary import fail, group
from statusdash.cli.common import CertsDirOpt, DataDirOpt, JsonOpt, print_json, settings

app = group(help="Agent enrollment: bootstrap tokens, approvals (run on the server host).")
token_app = group(help="Bootstrap tokens for `statusdash agent enroll`.")
app.add_typer(token_app, name="token")


def _when(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _tags(pairs: list[str]) -> dict[str, str]:
    """``--tag`` values: server tags of every host the token enrolls (empty value: blocked)."""
    from statusdash import tagtext

    try:
        return tagtext.parse_pairs(pairs, allow_empty=True)
    except tagtext.TagError as exc:
        fail(f"--tag: {exc}", 2)


@token_app.command("create")
def create(
    hosts: Annotated[
        str, typer.Option("--hosts", help="glob the host ids must match, e.g. 'web-*'")
    ] = "*",
    uses: Annotated[int, typer.Option("--uses", min=1, help="enrollments it allows")] = 1,
    expires: Annotated[str, typer.Option("--expires", help="lifetime: 30m, 24h, 7d")] = "24h",
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="KEY=VALUE: a server tag of each host it enrolls (repeat)"),
    ] = None,
    data_dir: DataDirOpt = None,
    certs_dir: CertsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a token (shown once, stored hashed) and print it with the CA's fingerprint."""
    from statusdash import durations
    from statusdash.pki.ca import ca_fingerprint
    from statusdash.server import enroll_admin as enroll

    try:
        seconds = durations.parse(expires, bare_unit=None)
    except ValueError as exc:
        fail(f"--expires: {exc}", 2)
    s = settings(status_data_dir=data_dir, vault_path=certs_dir)
    fingerprint = ca_fingerprint(s.vault_path)  # no CA: a PkiError, before any token exists
    t = enroll.create_token(s.db_path, hosts, uses, seconds, _tags(tag or []))
    if as_json:
        print_json(
            {
                "token": t.token,
                "ca_fingerprint": fingerprint,
                "id": t.token_id,
                "expires_at": _when(t.expires_at),
                "uses": t.uses,
                "hosts": t.hosts,
                "tags": t.tags,
            }
        )
        return
    typer.echo(t.token)
    typer.echo(f"ca fingerprint (sha256): {fingerprint}")
    typer.echo(
        f"token {t.token_id}: hosts {t.hosts!r}, {t.uses} use(s), until {_when(t.expires_at)};"
        " shown once. On the host: statusdash agent enroll --server URL --token TOKEN"
        f" --ca-fingerprint {fingerprint}",
        err=True,
    )


@token_app.command("ls")
def ls(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """List tokens (never their secrets): hosts, uses, expiry and state."""
    import json

    from statusdash.server import enroll_admin as enroll

    rows: list[dict[str, Any]] = [
        {
            "id": t.token_id,
            "hosts": t.hosts,
            "uses": t.uses,
            "uses_max": t.uses_max,
            "expires_at": _when(t.expires_at),
            "created_at": _when(t.created_at),
            "revoked_at": _when(t.revoked_at),
            "state": enroll.token_state(t),
            "tags": json.loads(t.tags or "{}"),
        }
        for t in enroll.list_tokens(settings(status_data_dir=data_dir).db_path)
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no enrollment tokens")
    for r in rows:
        typer.echo(
            f"{r['id']}  {r['hosts']:<24} {r['uses']}/{r['uses_max']} used  {r['state']:<8}"
            f" until {r['expires_at']}"
        )


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="the token's id")], data_dir: DataDirOpt = None
) -> None:
    """Revoke a token: the server refuses it from its next request."""
    from statusdash.server import enroll_admin as enroll

    t = enroll.revoke_token(settings(status_data_dir=data_dir).db_path, token_id)
    typer.echo(f"enrollment token {t.token_id} revoked")


@app.command("pending")
def pending(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Enrollments that wait for an operator (a host id held by another key)."""
    from statusdash.server import enroll_admin as enroll

    rows = [
        {
            "host": r.host,
            "token_id": r.token_id,
            "key_sha256": r.key_sha256,
            "address": r.address,
            "requested_at": _when(r.created_at),
            "reason": r.reason,
        }
        for r in enroll.list_pending(settings(status_data_dir=data_dir).db_path)
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no enrollment waits for approval")
    for r in rows:
        where = r["address"] or "?"
        typer.echo(f"{r['host']:<24} from {where:<16} {r['requested_at']}  {r['reason']}")


@app.command("approve")
def approve(
    host: Annotated[str, typer.Argument(help="host id of the waiting request")],
    data_dir: DataDirOpt = None,
) -> None:
    """Approve HOST's waiting enrollment: the agent gets its certificate at its next poll."""
    from statusdash.server import enroll_admin as enroll

    r = enroll.approve(settings(status_data_dir=data_dir).db_path, host)
    typer.echo(f"approved the enrollment of {r.host} (key sha256 {r.key_sha256[:16]}...)")
