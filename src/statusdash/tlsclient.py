"""Client-side TLS contexts for httpx (agent, CLI, TUI).

httpx 0.28.1 silently sends no client certificate when ``verify`` is a path and ``cert`` is set
(its path-``verify`` branch returns before it loads ``cert``), so we always build the
``ssl.SSLContext`` ourselves.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def client_context(
    ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """A verifying client context trusting ``ca`` (or the system store), with our cert if given."""
    if ca is not None:
        ctx = ssl.create_default_context(cafile=str(ca))
    else:
        ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


def httpx_verify(
    url: str, ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext | bool:
    """What to pass as httpx's ``verify=``: a context for https, True for plain http."""
    if url.startswith("https://"):
        return client_context(ca, cert, key)
    return True
