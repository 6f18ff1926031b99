"""Where the server is (its URL, normalized) and why a reader cannot reach it, said as what to do.

``client.py`` raises its errors with these sentences: a closed port ("nothing listens on"),
``http://`` to a TLS server ("this server speaks HTTPS"), the TLS file that cannot be loaded.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from statusdash.errors import Invalid


def normalize_url(url: str) -> str:
    """``url`` as logins are keyed: scheme, lower-case host, explicit port, no path or slash.

    ``HTTPS://Status.Example:443/`` and ``https://status.example`` are one server:
    ``https://status.example:443``. ``Invalid`` for a URL that is not http(s) with a host.
    """
    from urllib.parse import urlsplit

    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise Invalid(f"server URL {text!r} is not valid: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"server URL {text!r} must look like https://HOST:PORT")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None:
        port = 443 if scheme == "https" else 80
    return f"{scheme}://{host}:{port}"


def tls_files_problem(exc: Exception, ca: Path | None, cert: Path | None, key: Path | None) -> str:
    """Which of the CA, certificate and key cannot be loaded, and why, in one sentence."""
    files = (("CA certificate", ca), ("client certificate", cert), ("key", key))
    for label, path in files:
        if path is None:
            continue
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as err:
            return f"{label} {path}: {err.strerror or err}"
    if ca is not None:
        try:
            ssl.create_default_context(cafile=str(ca))
        except (OSError, ValueError, ssl.SSLError) as err:
            return f"CA certificate {ca}: no PEM certificate in it ({_ssl_reason(err)})"
    if cert is not None and not _has_pem_certificate(cert):
        return f"client certificate {cert}: no PEM certificate in it"
    if "KEY_VALUES_MISMATCH" in str(exc):
        return f"key {key} does not belong to the client certificate {cert}"
    if cert is not None:
        return f"cannot load the client certificate {cert} with key {key}: {_ssl_reason(exc)}"
    return f"cannot load TLS files: {exc}"


def _has_pem_certificate(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return b"-----BEGIN CERTIFICATE" in f.read(1 << 20)
    except OSError:
        return False


def _ssl_reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason).lower().replace("_", " ") if reason else str(exc)


def expired(code: str, detail: str) -> bool:
    """Whether a 401 says the token ended (its lifetime, or the password it was bound to)."""
    return code == "login_expired" or detail.startswith("token expired")


def _speaks_tls(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether ``host:port`` completes a TLS handshake (certificates not checked: a probe)."""
    import socket

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=host),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False


def reason(base_url: str, exc: httpx.TransportError) -> str:
    """Why ``base_url`` could not be reached, said as what to do about it."""
    text = str(exc) or type(exc).__name__
    url = httpx.URL(base_url)
    host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, httpx.ConnectError) and "refused" in text.lower():
        return f"nothing listens on {where} (is the server running, on that port?)"
    if isinstance(exc, httpx.ConnectError) and "WRONG_VERSION_NUMBER" in text:
        return f"this server speaks plain HTTP, not HTTPS: use http://{where}"
    if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in text:
        return f"the server's certificate is not trusted ({text}); pass --ca"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        if url.scheme == "http" and _speaks_tls(host, port):
            return f"this server speaks HTTPS: use https://{where}"
        return f"{text} (a refused client certificate looks like this; check --cert/--key)"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer from {where} in time ({type(exc).__name__})"
    return text
