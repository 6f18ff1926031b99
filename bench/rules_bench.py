"""What ``GET /api/alerts/rules`` costs to build: the rules in force for a whole fleet.

``python -m bench.rules_bench [--hosts N]``: the engine's rule set with 10 overrides, N hosts
of 4 mounts and 2 services each, resolved and JSON-encoded as the route does it (in a worker
thread there; here in the caller), after one warm-up round (the engine has every host's specs
cached once it has judged a report from each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from statusdash.server.alerts.rules import RuleSet, default_rules, load_rules
from statusdash.server.routes.rules import _encode

HOSTS = 2_000
ROUNDS = 5


def _ruleset(tmp: Any) -> RuleSet:
    lines = [f'[[overrides]]\nhost = "web-{i}*"\nrule = "disk"\nmount = "/data"\nthreshold = 95\n'
             for i in range(10)]  # fmt: skip
    path = tmp / "rules.toml"
    path.write_text("\n".join(lines))
    return load_rules(path, default_rules())


def run(hosts: int = HOSTS, rounds: int = ROUNDS) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        rules = _ruleset(Path(tmp))
    fleet = {
        f"web-{i:05d}": (["/", "/data", "/var", "/home"], ["nginx", "ssh"]) for i in range(hosts)
    }
    size = len(_encode(rules, fleet, None))  # warm-up: fills the spec cache as ingest would
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        _encode(rules, fleet, None)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "hosts": hosts,
        "build_ms_median": round(statistics.median(times), 1),
        "build_ms_min": round(min(times), 1),
        "build_ms_max": round(max(times), 1),
        "answer_kb": round(size / 1024),
        "kb_per_host": round(size / 1024 / hosts, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", type=int, default=HOSTS)
    p.add_argument("--rounds", type=int, default=ROUNDS)
    args = p.parse_args()
    print(json.dumps(run(args.hosts, args.rounds), indent=2))


if __name__ == "__main__":
    main()
