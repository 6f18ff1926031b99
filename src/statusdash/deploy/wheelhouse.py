"""The wheelhouse pushed to hosts: this very statusdash and every dependency, as wheels.

Built once with ``pip wheel`` and cached under ``~/.cache/statusdash/wheelhouse/KEY``, where KEY
names the version, this Python's tag and machine, and a digest of the source tree (a changed
tree is a new wheelhouse, an unchanged one is reused). The wheels fit hosts with the same
CPython minor version and machine as the one that built them (``meta.json`` records both, and
the deploy checks them); for other hosts build one there, or with ``pip download --platform``,
and pass it with ``--wheelhouse``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from statusdash import __version__
from statusdash.deploy.ssh import DeployError, last_line

META = "meta.json"
BUILD_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    version: str  # of the statusdash wheel in it
    python: str | None  # "3.11" of the builder, None if unknown (a wheelhouse given as is)
    machine: str | None

    @property
    def wheels(self) -> list[Path]:
        return sorted(self.path.glob("*.whl"))


def python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def source_root() -> Path | None:
    """The source checkout this statusdash runs from (with its pyproject), or None."""
    here = Path(__file__).resolve().parents[3]  # src/statusdash/deploy/wheelhouse.py
    pyproject = here / "pyproject.toml"
    if pyproject.is_file() and 'name = "statusdash"' in pyproject.read_text():
        return here
    return None


def _digest(root: Path) -> str:
    h = hashlib.sha256((root / "pyproject.toml").read_bytes())
    for f in sorted((root / "src" / "statusdash").rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "statusdash" / "wheelhouse"


def statusdash_version(path: Path) -> str:
    """The version of the (newest) statusdash wheel in ``path``; DeployError if none."""
    found = sorted(
        (w.name.split("-")[1] for w in path.glob("statusdash-*.whl")),
        key=lambda v: tuple(int(p) if p.isdigit() else -1 for p in v.split(".")),
    )
    if not found:
        raise DeployError(f"the wheelhouse {path} holds no statusdash wheel")
    return found[-1]


def given(path: Path) -> Wheelhouse:
    """A wheelhouse the operator built: its statusdash version, and its meta if it has one."""
    if not path.is_dir():
        raise DeployError(f"--wheelhouse {path} is not a directory")
    meta: dict[str, str] = {}
    if (path / META).is_file():
        meta = json.loads((path / META).read_text())
    return Wheelhouse(path, statusdash_version(path), meta.get("python"), meta.get("machine"))


def build(cache: Path | None = None) -> Wheelhouse:
    """The wheelhouse of the running statusdash: from the cache, or built now with pip."""
    root = source_root()
    key = f"{__version__}-py{python_tag()}-{platform.machine()}"
    key += f"-{_digest(root)}" if root is not None else ""
    target = (cache or cache_dir()) / key
    if (target / META).is_file():
        return given(target)
    work = target.with_name(target.name + ".part")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    what = str(root) if root is not None else f"statusdash=={__version__}"
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"]
    try:
        done = subprocess.run(
            [*cmd, "--wheel-dir", str(work), what],
            capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise DeployError(f"pip wheel took longer than {BUILD_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        raise DeployError(f"cannot build the wheelhouse: {last_line(done.stderr)}")
    meta = {"python": python_tag(), "machine": platform.machine(), "version": __version__}
    (work / META).write_text(json.dumps(meta))
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return given(target)
