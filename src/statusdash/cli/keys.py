"""``statusdash keys issue|ls|revoke``: agent API keys, run on the server host (its database)."""

from __future__ import annotations

from pathlib import Path

import typer

from statusdash import units
from statusdash.cli.boundary import fail, group
from statusdash.cli.common import DataDirOpt, JsonOpt, print_json, settings

app = group(help="Agent API keys (the fallback to client certificates).")


def _db(data_dir: Path | None) -> Path:
    return settings(status_data_dir=data_dir).db_path


@app.command("issue")
def issue(host: str, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Make a key bound to HOST; it is shown once and stored only as a hash."""
    from statusdash.server import keys

    k = keys.issue(_db(data_dir), host)  # a bad host id is errors.Invalid: the boundary's exit 1
    if as_json:
        print_json({"host": k.host, "key_id": k.key_id, "key": k.key})
        return
    typer.echo(k.key)
    typer.echo(
        f"API key {k.key_id} for {k.host}: shown once; give it to the agent as API_KEY.", err=True
    )


@app.command("ls")
def ls(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """List keys (never their secrets)."""
    from datetime import UTC, datetime

    from statusdash.server import keys

    rows = [
        {
            "key_id": k.key_id,
            "host": k.host,
            "created_at": datetime.fromtimestamp(k.created_at, UTC).isoformat(),
            "revoked": k.revoked_at is not None,
        }
        for k in keys.list_keys(_db(data_dir))
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no API keys")
    for r in rows:
        state = "revoked" if r["revoked"] else "active"
        typer.echo(f"{r['key_id']}  {r['host']:<30} {state:<8} {r['created_at']}")


@app.command("revoke")
def revoke(host: str, data_dir: DataDirOpt = None) -> None:
    """Revoke every active key of HOST (the server stops accepting them within seconds)."""
    from statusdash.server import keys

    n = keys.revoke(_db(data_dir), host)
    if n == 0:
        fail(f"no active API key for {host}")
    typer.echo(f"revoked {units.count(n, 'key')} of {host}")
