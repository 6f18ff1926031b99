"""Fixtures of the deploy tests: a real sshd, the wheelhouse (built once per session)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from statusdash.deploy import wheelhouse as wh
from tests.deploy.sshd import SSHD, Sshd, start_sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not SSHD.exists():
        pytest.fail("no /usr/sbin/sshd: run `make sshd` (Debian's openssh-server)")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> wh.Wheelhouse:
    """This statusdash and its dependencies as wheels: ``pip wheel`` once per session."""
    return wh.build(tmp_path_factory.mktemp("wheelcache"))


def bump_version(src: Path, work: Path, version: str) -> Path:
    """A copy of the source tree whose version is ``version``."""
    tree = work / "tree"
    shutil.copytree(src / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(src / name, tree / name)
    py = tree / "pyproject.toml"
    py.write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', py.read_text()))
    init = tree / "src" / "statusdash" / "__init__.py"
    init.write_text(re.sub(r'__version__ = ".*"', f'__version__ = "{version}"', init.read_text()))
    return tree


@pytest.fixture(scope="session")
def next_wheelhouse(
    wheelhouse: wh.Wheelhouse, tmp_path_factory: pytest.TempPathFactory
) -> wh.Wheelhouse:
    """The same wheelhouse plus statusdash 0.1.1 (built from a copy of this tree)."""
    root = wh.source_root()
    assert root is not None
    work = tmp_path_factory.mktemp("next")
    house = work / "wheels"
    shutil.copytree(wheelhouse.path, house)
    tree = bump_version(root, work, "0.1.1")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(house), str(tree)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    meta = json.loads((house / wh.META).read_text())
    (house / wh.META).write_text(json.dumps({**meta, "version": "0.1.1"}))
    return wh.given(house)
