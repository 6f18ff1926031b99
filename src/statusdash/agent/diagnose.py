"""Why a push failed, in words: transport errors explained, our own certificate checked.

uvicorn refuses a bad client certificate without a TLS alert, so all the agent sees is a
disconnect; checking its own certificate (expiry, issuer, key) is how it names the cause.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import NamedTuple

import httpx


class Explained(NamedTuple):
    message: str
    handshake_suspect: bool  # the server may have refused our certificate


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def explain(exc: Exception, url: str, has_cert: bool) -> Explained:
    """One line on what a transport error means for the operator."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            why = e.verify_message or str(e)
            return Explained(
                f"the server's certificate at {url} is not trusted ({why}); check --ca", False
            )
        if isinstance(e, ConnectionRefusedError):
            return Explained(f"connection refused by {url}: is the server running?", False)
        if isinstance(e, socket.gaierror):
            return Explained(f"cannot resolve the server's name in {url}: {e}", False)
    if isinstance(exc, httpx.TimeoutException):
        return Explained(f"no answer from {url} in time ({type(exc).__name__})", False)
    suspect = has_cert and url.startswith("https://")
    detail = str(exc) or type(exc).__name__
    return Explained(f"the server at {url} closed the connection ({detail})", suspect)


def check_certificate(ca: Path | None, cert: Path, key: Path | None) -> list[str]:
    """Likely reasons the server refuses our certificate; empty if none is visible here."""
    from statusdash.pki.check import diagnose_client_cert  # cryptography: only once refused

    return diagnose_client_cert(ca or cert, cert, key or cert)


def handshake_advice(ca: Path | None, cert: Path, key: Path | None) -> str:
    """The log line for a connection the server closed while we presented ``cert``."""
    try:
        problems = check_certificate(ca, cert, key)
    except Exception as exc:  # the diagnosis must never take the agent down
        return f"could not check the client certificate {cert}: {exc}"
    if problems:
        return "the server probably refused our client certificate: " + "; ".join(problems)
    return (
        f"the client certificate {cert} looks valid here (dates, issuer, key): if the server"
        " keeps closing the connection, it may have been revoked, or the server trusts another CA"
    )
