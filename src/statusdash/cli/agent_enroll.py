"""``statusdash agent enroll``: a key made here, a CSR signed by the server, the CA pinned.

First contact is pinned, not trusted on first use: the CA is fetched over TLS without
verification, its SHA-256 fingerprint checked against ``--ca-fingerprint`` (printed with the
token), and only then is anything sent, over a verified connection. The private key never
leaves this host. Files land in the agent's layout: ``DIR/ca/ca.crt``, ``DIR/clients/H.crt|.key``.
"""

from __future__ import annotations

import hmac
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from statusdash.cli.boundary import fail
from statusdash.cli.common import ServerOpt, settings

if TYPE_CHECKING:
    import httpx

    from statusdash.settings import Settings

REQUEST_TIMEOUT_S = 15.0
MAX_ANSWER_BYTES = 64 * 1024


def normalize_fingerprint(text: str) -> str:
    """``sha256:AB:CD:...`` or plain hex, as 64 lowercase hex digits; usage error otherwise."""
    raw = text.strip().lower().removeprefix("sha256:").replace(":", "")
    if len(raw) != 64 or any(c not in "0123456789abcdef" for c in raw):
        fail(f"--ca-fingerprint {text!r} is not a SHA-256 fingerprint (64 hex digits)", 2)
    return raw


def _get(client: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response:
    import httpx

    try:
        resp = client.request(method, url, **kw)
    except httpx.HTTPError as exc:
        fail(f"cannot reach {client.base_url}: {type(exc).__name__}: {exc}")
    if len(resp.content) > MAX_ANSWER_BYTES:
        fail(f"the answer to {url} is longer than {MAX_ANSWER_BYTES} bytes")
    return resp


def _json(resp: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; a one-line failure if it is not one."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        fail(f"the server's answer (HTTP {resp.status_code}) is not a JSON object")
    return body


def _refusal(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        return f"{body.get('detail')} (HTTP {resp.status_code})"
    except (ValueError, AttributeError):
        return f"HTTP {resp.status_code}"


def _pinned_ca(url: str, ca_path: Path, pin: str | None) -> bytes:
    """The CA certificate: from disk, or fetched unverified and checked against the pin."""
    import ssl

    import httpx

    from statusdash.pki.ca import fingerprint_pem

    if ca_path.exists():
        pem = ca_path.read_bytes()
        source = str(ca_path)
    else:
        if pin is None:
            fail(f"no CA at {ca_path}: give --ca-fingerprint (printed with the token)", 2)
        blind = ssl.create_default_context()
        blind.check_hostname = False
        blind.verify_mode = ssl.CERT_NONE  # only to read the CA, which the pin then checks
        with httpx.Client(base_url=url, verify=blind, timeout=REQUEST_TIMEOUT_S) as c:
            resp = _get(c, "GET", "/api/enroll/ca")
        if resp.status_code != 200:
            fail(f"the server did not give its CA: {_refusal(resp)}")
        pem, source = resp.content, f"{url}/api/enroll/ca"
    try:
        found = fingerprint_pem(pem)
    except (ValueError, UnicodeDecodeError):
        fail(f"{source} is not a PEM certificate")
    if pin is not None and not hmac.compare_digest(found, pin):
        fail(
            f"the CA of {source} has fingerprint {found}, not the pinned {pin}: refusing"
            " (the token was not sent)"
        )
    return pem


def _wait(client: httpx.Client, body: dict[str, Any], s: Settings) -> dict[str, Any]:
    """Poll a pending request with backoff until it is issued or ENROLL_WAIT_S have passed."""
    from statusdash.backoff import Backoff

    typer.echo(f"waiting for approval: {body.get('detail')}", err=True)
    backoff = Backoff(1.0, s.enroll_poll_max_s)
    deadline = time.monotonic() + s.enroll_wait_s
    while time.monotonic() < deadline:
        time.sleep(min(backoff.next_delay(), max(0.0, deadline - time.monotonic())))
        resp = _get(client, "GET", f"/api/enroll/requests/{body.get('request_id')}")
        if resp.status_code == 200:
            return _json(resp)
        if resp.status_code not in (202, 429, 503):
            fail(f"the enrollment was refused while waiting: {_refusal(resp)}")
    fail(f"no approval within {s.enroll_wait_s:g} s (ENROLL_WAIT_S); run `agent enroll` again")


def enroll(
    token: Annotated[
        str,
        typer.Option("--token", envvar="STATUSDASH_ENROLL_TOKEN", help="bootstrap token"),
    ],
    server: ServerOpt = None,
    host_id: Annotated[
        str | None, typer.Option("--host-id", help="this host's id (default: the hostname)")
    ] = None,
    certs_dir: Annotated[
        Path | None,
        typer.Option("--certs-dir", help="where ca/ and clients/ go (env VAULT_PATH)"),
    ] = None,
    ca_fingerprint: Annotated[
        str | None,
        typer.Option("--ca-fingerprint", help="SHA-256 of the CA (required without a CA on disk)"),
    ] = None,
) -> None:
    """Make a key here, have the server sign it with the token, and save the certificate."""
    import httpx
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from statusdash import hostid
    from statusdash.fsutil import PRIVATE_FILE, atomic_write
    from statusdash.pki.ca import PUBLIC_FILE, make_csr
    from statusdash.pki.check import PkiError, issued_by, parse_cert
    from statusdash.pki.vault import paths
    from statusdash.tlsclient import client_context

    s = settings()
    url = (server or s.server_url()).rstrip("/")
    if not url.startswith("https://"):
        fail(f"--server {url!r}: enrollment needs https:// (the CA is pinned over TLS)", 2)
    host = host_id if host_id is not None else hostid.from_hostname()
    if not hostid.is_valid(host):
        fail(f"--host-id {host!r} is not a valid host id", 2)
    pin = normalize_fingerprint(ca_fingerprint) if ca_fingerprint is not None else None
    p = paths(certs_dir or s.vault_path)
    ca_pem = _pinned_ca(url, p.ca_cert, pin)
    atomic_write(p.ca_cert, ca_pem, PUBLIC_FILE)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = make_csr(key, host).decode()
    verify = client_context(p.ca_cert)
    with httpx.Client(base_url=url, verify=verify, timeout=REQUEST_TIMEOUT_S) as c:
        resp = _get(c, "POST", "/api/enroll", json={"token": token, "csr": csr})
        if resp.status_code == 202:
            answer = _wait(c, _json(resp), s)
        elif resp.status_code == 200:
            answer = _json(resp)
        else:
            fail(f"the server refused the enrollment: {_refusal(resp)}")
    try:
        cert = parse_cert(str(answer["certificate"]).encode(), "the server's certificate")
    except (KeyError, PkiError):
        fail("the server's answer has no certificate")
    ca = parse_cert(ca_pem, "the CA")
    if cert.public_key() != key.public_key() or not issued_by(cert, ca):
        fail("the certificate the server sent is not for this key or not from the pinned CA")
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    atomic_write(p.client_key(host), pem_key, PRIVATE_FILE)  # 0600 from its creation
    atomic_write(p.client_cert(host), str(answer["certificate"]), PUBLIC_FILE)
    typer.echo(
        f"enrolled {host}: {p.client_cert(host)} (serial {cert.serial_number:x}, until"
        f" {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC); key {p.client_key(host)} (0600)"
    )
    typer.echo(
        f"run: statusdash agent run --server {url} --host-id {host} --certs-dir {p.root}",
        err=True,
    )
    sys.stdout.flush()
