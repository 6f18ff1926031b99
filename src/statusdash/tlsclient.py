"""Client-side TLS contexts for httpx (agent, CLI, TUI).

httpx 0.28.1 silently sends no client certificate when ``verify`` is a path and ``cert`` is set
(its path-``verify`` branch returns before it loads ``cert``), so we always build the
``ssl.SSLContext`` ourselves.
"""

from __future__ import annotations

import ssl
import weakref
from pathlib import Path

# Every live context that loaded a client certificate, with the files it loaded: a renewed
# certificate is loaded into them (``reload_cert``), so the next connection presents it.
_LOADED: weakref.WeakKeyDictionary[ssl.SSLContext, tuple[str, str | None]] = (
    weakref.WeakKeyDictionary()
)


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
        files = (str(cert), str(key) if key else None)
        ctx.load_cert_chain(*files)
        _LOADED[ctx] = files
    return ctx


def reload_cert(cert: Path) -> int:
    """Load ``cert`` (and its key) again into every live context made from it; how many.

    Connections already open keep the certificate they were made with; new ones present the
    new one. Safe while other threads connect when the key file is unchanged.
    """
    done = 0
    for ctx, (crt, key) in list(_LOADED.items()):
        if crt == str(cert):
            ctx.load_cert_chain(crt, key)
            done += 1
    return done


def httpx_verify(
    url: str, ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext | bool:
    """What to pass as httpx's ``verify=``: a context for https, True for plain http."""
    if url.startswith("https://"):
        return client_context(ca, cert, key)
    return True
