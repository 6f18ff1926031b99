"""``statusdash certs``: our own CA, the server certificate, client certificates and the CRL.

Run on the CA host (the one holding ``ca/ca.key``, usually the server). Files keep the seed
layout under ``--certs-dir`` (default VAULT_PATH, ``vault/certs``); see docs/trust.md.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from statusdash import units
from statusdash.cli.boundary import fail, group
from statusdash.cli.common import CertsDirOpt, JsonOpt, print_json, settings

T = TypeVar("T")

app = group(help="Certificates: CA, server, agents and viewers; revocation (CRL).")
DaysOpt = Annotated[int | None, typer.Option("--days", min=1, help="validity in days")]
ForceOpt = Annotated[bool, typer.Option("--force", help="replace what exists")]


class RoleChoice(StrEnum):
    agent = "agent"
    viewer = "viewer"


class PurposeChoice(StrEnum):
    auto = "auto"
    client = "client"
    server = "server"


def _vault(certs_dir: Path | None) -> Path:
    return certs_dir if certs_dir is not None else settings().vault_path


def _run(fn: Callable[[], T]) -> T:
    """Run a PKI call: bad input (a ValueError) is a usage error, exit 2; a PkiError reaches the
    boundary (one line, exit 1)."""
    try:
        return fn()
    except ValueError as exc:
        fail(str(exc), 2)


def _day(dt: Any) -> str:
    return f"{dt:%Y-%m-%d %H:%M} UTC"


@app.command("init")
def init(certs_dir: CertsDirOpt = None, force: ForceOpt = False, days: DaysOpt = None) -> None:
    """Create the CA (key, certificate, empty CRL). Refuses to replace one without --force."""
    from statusdash.pki.ca import CA_DAYS, init_ca
    from statusdash.pki.vault import paths

    v = _vault(certs_dir)
    path = _run(lambda: init_ca(v, force=force, days=days or CA_DAYS))
    typer.echo(f"CA created: {path} (key {paths(v).ca_key}, mode 0600; keep it private)")


@app.command("server")
def server(
    san: Annotated[
        list[str] | None,
        typer.Option("--san", help="DNS name or IP clients use to reach the server (repeat)"),
    ] = None,
    certs_dir: CertsDirOpt = None,
    days: DaysOpt = None,
    force: ForceOpt = False,
) -> None:
    """Issue the server certificate (default SANs: localhost, 127.0.0.1, ::1, this hostname)."""
    import socket

    from statusdash.pki.ca import SERVER_DAYS, issue_server_cert

    names = list(san or [])
    if not names:
        names = ["localhost", "127.0.0.1", "::1"]
        host = socket.gethostname().lower()
        if host and host != "localhost" and all(c.isalnum() or c in ".-" for c in host):
            names.append(host)
    v = _vault(certs_dir)
    c = _run(lambda: issue_server_cert(v, names, days or SERVER_DAYS, force=force))
    typer.echo(f"server certificate for {', '.join(names)}: {c.cert_path}")
    typer.echo(
        f"  serial {units.serial(c.serial)}, valid until {_day(c.not_after)}; restart the server"
    )


@app.command("issue")
def issue(
    host: Annotated[str, typer.Argument(help="host id (the certificate's CN)")],
    role: Annotated[RoleChoice, typer.Option("--role", help="what it may do")] = RoleChoice.agent,
    days: DaysOpt = None,
    certs_dir: CertsDirOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="rotate: issue anew, retire (not revoke) the old one")
    ] = False,
) -> None:
    """Issue a client certificate: CN = HOST, role agent (ingest) or viewer (read)."""
    from statusdash.pki.ca import CLIENT_DAYS, issue_client_cert

    v = _vault(certs_dir)
    c = _run(lambda: issue_client_cert(v, host, role.value, days or CLIENT_DAYS, force=force))
    typer.echo(f"{c.role} certificate for {c.name}: {c.cert_path}")
    serial = units.serial(c.serial)
    typer.echo(f"  key {c.key_path} (mode 0600), serial {serial}, until {_day(c.not_after)}")
    typer.echo(f"  copy ca/ca.crt, clients/{c.name}.crt and clients/{c.name}.key to the host")


@app.command("ls")
def ls(certs_dir: CertsDirOpt = None, as_json: JsonOpt = False) -> None:
    """List the CA, server and client certificates with role, serial, expiry and revocation."""
    from statusdash.pki.vault import list_certs

    v = _vault(certs_dir)
    records = _run(lambda: list_certs(v))
    if as_json:
        print_json(
            [
                {
                    "name": r.name,
                    "role": r.role,
                    "subject": r.subject,
                    "serial": units.serial(r.serial),
                    "not_before": r.not_before.isoformat(),
                    "not_after": r.not_after.isoformat(),
                    "revoked": r.revoked,
                    "retired": r.retired,
                    "status": r.status(),
                    "path": str(r.path),
                }
                for r in records
            ]
        )
        return
    if not records:
        typer.echo(f"no certificates in {v}: run `statusdash certs init`")
        return
    typer.echo(f"{'NAME':<24} {'ROLE':<7} {'STATUS':<14} {'EXPIRES':<20} SERIAL")
    for r in records:
        typer.echo(
            f"{r.name:<24} {r.role:<7} {r.status():<14} {_day(r.not_after):<20}"
            f" {units.serial(r.serial)}"
        )


@app.command("revoke")
def revoke(
    host: Annotated[str | None, typer.Argument(help="host id whose certificate to revoke")] = None,
    serial: Annotated[
        str | None, typer.Option("--serial", help="revoke by serial (hex), e.g. a retired one")
    ] = None,
    certs_dir: CertsDirOpt = None,
) -> None:
    """Revoke HOST's certificate and re-issue the CRL; a running server applies it in seconds."""
    from statusdash.pki.ca import revoke as revoke_cert

    if (host is None) == (serial is None):
        fail("give either HOST or --serial", 2)
    try:
        number = int(serial, 16) if serial is not None else None
    except ValueError:
        fail(f"--serial {serial!r} is not a hexadecimal serial", 2)
    v = _vault(certs_dir)
    r = _run(lambda: revoke_cert(v, host, serial=number))
    state = "was already revoked" if r.already else "revoked"
    until = _day(r.crl_next_update)
    typer.echo(f"{r.name} (serial {units.serial(r.serial)}) {state}; CRL valid until {until}")


@app.command("crl")
def crl(
    days: Annotated[int, typer.Option("--days", min=1, help="CRL validity in days")] = 7,
    certs_dir: CertsDirOpt = None,
) -> None:
    """Re-issue the CRL now (a running server with the CA key does this by itself)."""
    from datetime import timedelta

    from statusdash.pki.ca import reissue_crl
    from statusdash.pki.vault import paths

    v = _vault(certs_dir)
    next_update = _run(lambda: reissue_crl(v, timedelta(days=days)))
    typer.echo(f"CRL {paths(v).crl} re-issued, valid until {_day(next_update)}")


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="certificate file (PEM or DER)")],
    purpose: Annotated[
        PurposeChoice, typer.Option("--as", help="check as client or server certificate")
    ] = PurposeChoice.auto,
    certs_dir: CertsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Say whether FILE chains to our CA, is valid now and unrevoked, and if not, why."""
    from statusdash.pki.vault import verify_cert

    v = _vault(certs_dir)
    r = _run(lambda: verify_cert(v, file, purpose.value))
    if as_json:
        print_json(
            {
                "ok": r.ok,
                "path": str(r.path),
                "subject": r.subject,
                "role": r.role,
                "serial": units.serial(r.serial),
                "not_after": r.not_after.isoformat(),
                "purpose": r.purpose,
                "problems": r.problems,
            }
        )
    elif r.ok:
        role = f", role {r.role}" if r.role else ""
        typer.echo(
            f"OK: {r.subject} is a valid {r.purpose} certificate of our CA{role},"
            f" until {_day(r.not_after)}"
        )
    else:
        typer.echo(f"INVALID: {r.subject} ({file})", err=True)
        for problem in r.problems:
            typer.echo(f"  - {problem}", err=True)
    if not r.ok:
        raise typer.Exit(1)
