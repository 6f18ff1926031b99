"""``agent deploy`` end to end: one host, ten in parallel, and a re-deploy (upgrade in place).

A real sshd on a loopback port (tests/deploy/sshd.py: its own host and user keys) stands for
the hosts, each "host" being its own prefix and host id on this machine; a real mTLS server
(in this process, a thread) enrolls them and receives their first reports. Every deploy is the
CLI in its own process, as an operator runs it: push the wheelhouse, make the venv, install
from the wheels only, enroll with a one-use token, start with ``--start nohup``, wait for the
first report. The wheelhouse is built once (its time is reported too) and then reused, as the
CLI's cache does. ``python -m bench --only deploy``; ``--quick``: one round of each.

The machine's two cores are shared: ten parallel installs are bound by CPU (pip unpacking and
byte-compiling ~50 wheels ten times), so the parallel figure is this machine's, not SSH's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_TIMEOUT_S = 600.0


def _deploy(env: dict[str, str], args: list[str]) -> float:
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "statusdash.cli", "agent", "deploy", *args],
        env=env, capture_output=True, text=True, timeout=DEPLOY_TIMEOUT_S, check=False,
    )  # fmt: skip
    took = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(f"deploy failed: {done.stderr.strip()[-500:]}")
    return took


def _stop_agents(prefixes: list[Path]) -> None:
    for prefix in prefixes:
        pid = prefix / "agent.pid"
        if pid.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid.read_text()), signal.SIGTERM)


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(values), 1),
        "min_s": round(min(values), 1),
        "max_s": round(max(values), 1),
        "runs": len(values),
    }


def run(rounds: int = 3, parallel_rounds: int = 1, hosts: int = 10) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import RunningServer, make_settings, make_vault
    from tests.deploy.sshd import start_sshd

    from statusdash.deploy import wheelhouse as wh

    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        house = wh.build(work / "wheelcache")
        build_s = time.monotonic() - t0
        wheels = len(house.wheels)
        vault = make_vault(work / "vault", agents=())
        settings = make_settings(work / "data", mtls_enabled=True, vault_path=vault)
        server = RunningServer(settings).start()
        sshd = start_sshd(work / "sshd")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STATUSDASH_", "STATUS_"))}
        env.update(STATUS_DATA_DIR=str(settings.status_data_dir), VAULT_PATH=str(vault))
        env["PYTHONPATH"] = str(ROOT / "src")
        common = [
            "--identity", str(sshd.user_key), "--known-hosts", str(sshd.known_hosts),
            "--server", server.url, "--ca", str(vault / "ca" / "ca.crt"),
            "--cert", str(vault / "clients" / "viewer.crt"),
            "--key", str(vault / "clients" / "viewer.key"),
            "--wheelhouse", str(house.path), "--start", "nohup", "--interval", "2",
        ]  # fmt: skip
        started: list[Path] = []
        try:
            one, again, fleet = [], [], []
            for r in range(rounds):
                prefix = work / f"one-{r}"
                started.append(prefix)
                args = [sshd.target, "--host-id", f"bench-{r}", "--prefix", str(prefix)]
                one.append(_deploy(env, [*args, *common]))
                again.append(_deploy(env, [*args, *common]))  # in place: identity kept
                print(f"    one host: {one[-1]:.1f} s, re-deploy {again[-1]:.1f} s", flush=True)
                _stop_agents(started)
            for r in range(parallel_rounds):
                lines = []
                for i in range(hosts):
                    prefix = work / f"fleet-{r}-{i}"
                    started.append(prefix)
                    lines.append(f"{sshd.target} fleet-{r}-{i} prefix={prefix}")
                hosts_file = work / f"hosts-{r}.txt"
                hosts_file.write_text("\n".join(lines) + "\n")
                argv = ["--all", str(hosts_file), "--parallel", str(hosts), *common]
                fleet.append(_deploy(env, argv))
                print(f"    {hosts} hosts in parallel: {fleet[-1]:.1f} s", flush=True)
                _stop_agents(started)
        finally:
            _stop_agents(started)
            sshd.stop()
            server.stop()
            shutil.rmtree(work / "sshd", ignore_errors=True)
    return {
        "wheelhouse_build_s": round(build_s, 1),
        "wheels": wheels,
        "one_host": _summary(one),
        "redeploy_one_host": _summary(again),
        f"{hosts}_hosts_parallel": _summary(fleet),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
