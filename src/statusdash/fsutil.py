"""Durable, private file writes, in one place (keys, certificates, tokens, configs, backups).

Pure standard library, so the agent can import it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (no-op where a directory cannot open)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path, data: bytes | str, mode: int = PRIVATE_FILE, *, durable: bool = True
) -> None:
    """Replace ``path`` with ``data`` atomically: readers see the old file or the new, never half.

    The file is created with ``mode`` (no window in which it is readable by others), written,
    fsynced, renamed over ``path``, and the directory is fsynced (``durable=False`` skips both
    fsyncs: for caches a power cut may lose). A missing parent is created with mode 0700.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have cut bits off ``mode``: it is what was asked
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
