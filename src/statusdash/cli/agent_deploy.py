"""``statusdash agent deploy`` (install, enroll and start agents over SSH) and ``agent status``.

Run on the server host (a token is made in its database, as ``enroll token create`` does),
or anywhere with ``--token`` and ``--ca-fingerprint``. The first report is awaited through the
read API, with the reader's usual credentials (``statusdash login``, STATUSDASH_TOKEN or a
viewer certificate).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated

import typer

from statusdash.cli.boundary import fail
from statusdash.cli.common import (
    Connection,
    JsonOpt,
    age,
    print_json,
    print_listing,
    print_table,
    reader,
    server_url,
    settings,
)
from statusdash.errors import Invalid

if TYPE_CHECKING:
    from statusdash.deploy.run import Outcome, Plan
    from statusdash.deploy.ssh import Ssh
    from statusdash.schema import AgentStatus
    from statusdash.settings import Settings

TOKEN_LIFETIME_S = 3600.0  # a token made for one host's deploy: one use, for an hour


def _tags(pairs: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            fail(f"--tag {pair!r} must be KEY=VALUE", 2)
        tags[k.strip()] = v.strip()
    return tags


Row = tuple[str, str, dict[str, str], str | None]  # target, host id, tags, prefix


def _prefix(text: str, where: str) -> str:
    if not text.startswith("/") or any(c in text for c in "\n\0"):
        fail(f"{where} {text!r} must be an absolute path", 2)
    return text


def _hosts_file(path: Path) -> list[Row]:
    """``[USER@]HOST[:PORT] [HOST_ID] [k=v ...] [prefix=/path]`` per line; ``#`` comments."""
    from statusdash import hostid
    from statusdash.deploy.ssh import Target

    try:
        text = path.read_text()
    except OSError as exc:
        fail(f"--all {path}: {exc.strerror or exc}")
    rows: list[Row] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            target = Target.parse(words[0])
        except Invalid as exc:
            fail(f"{path}:{n}: {exc}", 2)
        rest = words[1:]
        host = rest.pop(0) if rest and "=" not in rest[0] else target.host.lower()
        if not hostid.is_valid(host):
            fail(f"{path}:{n}: {host!r} is not a valid host id (give one after the target)", 2)
        if host in seen:
            fail(f"{path}:{n}: host id {host!r} appears twice", 2)
        seen.add(host)
        tags = _tags(rest)
        prefix = tags.pop("prefix", None)
        rows.append(
            (words[0], host, tags, _prefix(prefix, f"{path}:{n}: prefix") if prefix else None)
        )
    if not rows:
        fail(f"--all {path} names no host", 2)
    return rows


def _token_source(
    s: Settings, token: str | None, fingerprint: str | None, tags: dict[str, dict[str, str]]
) -> Callable[[str], tuple[str, str]]:
    """Host id -> (token, CA fingerprint): the one given, or a one-use token made per host."""
    from statusdash.cli.agent_enroll import normalize_fingerprint
    from statusdash.pki.ca import ca_fingerprint

    pin = normalize_fingerprint(fingerprint) if fingerprint else None
    lock = threading.Lock()

    def source(host: str) -> tuple[str, str]:
        from statusdash.deploy.ssh import DeployError
        from statusdash.pki.check import PkiError

        with lock:
            try:
                found = pin or ca_fingerprint(s.vault_path)
            except PkiError as exc:
                raise DeployError(f"{exc} (or give --token and --ca-fingerprint)") from None
            if token is not None:
                return token, found
            from statusdash.server import enroll_admin

            try:
                t = enroll_admin.create_token(
                    s.db_path, host, 1, TOKEN_LIFETIME_S, tags.get(host, {})
                )
            except Exception as exc:  # the database of another host, or none
                raise DeployError(
                    f"cannot make a token in {s.db_path} ({exc}): run this on the server host,"
                    " or give --token and --ca-fingerprint"
                ) from None
            return t.token, found

    return source


def _waiter(conn: Connection, wait_s: float) -> Callable[[str, float, str], None]:
    """Wait until the server has a report from the host, sent by ``version``, after ``since``."""
    from statusdash.client import ClientError
    from statusdash.deploy.ssh import DeployError

    def wait(host: str, since: float, version: str) -> None:
        deadline = time.monotonic() + wait_s
        last = "no report yet"
        with conn.client() as client:
            while time.monotonic() < deadline:
                try:
                    agents = {a.host: a for a in client.agents().agents}
                except ClientError as exc:
                    last = str(exc)
                else:
                    a = agents.get(host)
                    if a is not None and a.last_seen.timestamp() >= since:
                        if a.version == version:
                            return
                        last = f"its reports say version {a.version}, not {version}"
                time.sleep(0.5)
        raise DeployError(
            f"the server has no report from {host} within {wait_s:g} s (DEPLOY_REPORT_WAIT_S;"
            f" {last}): see the agent's log on the host"
        )

    return wait


def _line(o: Outcome) -> str:
    if not o.ok:
        return f"{o.target} ({o.host_id}): failed at {o.step}: {o.error}"
    how = "upgraded from " + o.previous if o.previous and o.previous != o.version else "installed"
    parts = [f"{o.target} ({o.host_id}): statusdash {o.version} {how}"]
    parts.append("enrolled" if o.enrolled else "identity kept")
    if o.started:
        parts.append(f"started ({o.started}), first report received")
    else:
        parts.append(o.hint)
    return ", ".join(parts) + f" in {o.seconds:.1f} s"


def _run_all(
    jobs: list[tuple[Ssh, str, PurePosixPath | None]], plan: Plan, parallel: int
) -> list[Outcome]:
    from statusdash.deploy.run import deploy

    total, done = len(jobs), 0
    lock = threading.Lock()

    def note_for(host: str) -> Callable[[str], None]:
        def note(step: str) -> None:
            with lock:
                typer.echo(f"[{done}/{total} done] {host}: {step}", err=True)

        return note

    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=min(parallel, total)) as pool:
        futures = [
            pool.submit(deploy, ssh, host, plan, note_for(host), prefix)
            for ssh, host, prefix in jobs
        ]
        for future in as_completed(futures):
            outcome = future.result()
            with lock:
                done += 1
                mark = "ok" if outcome.ok else "FAILED"
                typer.echo(f"[{done}/{total} done] {outcome.host_id}: {mark}", err=True)
            outcomes.append(outcome)
    return sorted(outcomes, key=lambda o: o.host_id)


def deploy(
    conn: Connection,
    target: Annotated[
        str | None, typer.Argument(help="[USER@]HOST[:PORT] to deploy to (or --all FILE)")
    ] = None,
    host_id: Annotated[
        str | None, typer.Option("--host-id", help="the agent's host id (its certificate's CN)")
    ] = None,
    all_file: Annotated[
        Path | None,
        typer.Option("--all", help="file of `[USER@]HOST[:PORT] [HOST_ID] [k=v ...]` lines"),
    ] = None,
    identity: Annotated[
        Path | None, typer.Option("--identity", "-i", help="SSH private key (ssh -i)")
    ] = None,
    known_hosts: Annotated[
        Path | None, typer.Option("--known-hosts", help="known_hosts file for ssh")
    ] = None,
    accept_new_host_key: Annotated[
        bool,
        typer.Option(
            "--accept-new-host-key", help="trust a host key never seen (not a changed one)"
        ),
    ] = False,
    ssh_option: Annotated[
        list[str] | None, typer.Option("--ssh-option", "-o", help="passed to ssh -o (repeat)")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="KEY=VALUE for the host's token (repeat)")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="STATUSDASH_ENROLL_TOKEN", help="bootstrap token to use"),
    ] = None,
    ca_fingerprint: Annotated[
        str | None, typer.Option("--ca-fingerprint", help="the CA's SHA-256 (with --token)")
    ] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="where on the host")] = "/opt/statusdash",
    wheelhouse: Annotated[
        Path | None, typer.Option("--wheelhouse", help="wheels to push (default: built here)")
    ] = None,
    start: Annotated[
        str, typer.Option("--start", help="auto (systemd as root, else none), systemd, nohup, none")
    ] = "auto",
    python: Annotated[str, typer.Option("--python", help="interpreter on the host")] = "python3",
    interval: Annotated[
        float | None, typer.Option("--interval", min=0.1, max=86400, help="agent's interval")
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option("--parallel", min=1, max=256, help="hosts at once (DEPLOY_PARALLEL)"),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="do not wait for the first report")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Install statusdash on hosts over SSH, enroll them, start the agent, await its report."""
    from statusdash import hostid
    from statusdash.deploy import wheelhouse as wh
    from statusdash.deploy.run import START_MODES, Plan
    from statusdash.deploy.ssh import DeployError, Ssh, Target

    if start not in START_MODES:
        fail(f"--start must be one of {', '.join(START_MODES)}, not {start!r}", 2)
    if token is not None and tag:
        fail("--tag goes into the token made here: with --token, the token carries its tags", 2)
    _prefix(prefix, "--prefix")
    if (target is None) == (all_file is None):
        fail("give one TARGET or --all FILE", 2)
    s = settings()
    rows: list[Row]
    if all_file is not None:
        if host_id is not None:
            fail("--host-id is per line with --all", 2)
        rows = _hosts_file(all_file)
    else:
        assert target is not None
        if host_id is None or not hostid.is_valid(host_id):
            fail(f"--host-id {host_id!r} is not a valid host id", 2)
        rows = [(target, host_id, _tags(tag or []), None)]
    jobs: list[tuple[Ssh, str, PurePosixPath | None]] = []
    for text, host, _, where_to in rows:
        try:
            where = Target.parse(text)
        except Invalid as exc:
            fail(str(exc), 2)
        jobs.append(
            (
                Ssh(
                    where,
                    identity,
                    known_hosts,
                    accept_new_host_key,
                    s.deploy_ssh_timeout_s,
                    tuple(ssh_option or ()),
                ),
                host,
                PurePosixPath(where_to) if where_to else None,
            )
        )
    url = server_url(s, conn.server) if no_wait else conn.resolve()[0]
    try:
        house = wh.given(wheelhouse) if wheelhouse is not None else None
        if house is None:
            typer.echo("building the wheelhouse (cached after the first time)...", err=True)
            house = wh.build()
    except DeployError as exc:
        fail(str(exc))
    tags = {host: t for _, host, t, _ in rows}
    for t in tags.values():
        t.update(_tags(tag or []))
    plan = Plan(
        server=url,
        wheelhouse=house,
        tokens=_token_source(s, token, ca_fingerprint, tags),
        prefix=PurePosixPath(prefix),
        start=start,
        python=python,
        interval=interval,
        step_timeout_s=s.deploy_step_timeout_s,
        wait=None if no_wait else _waiter(conn, s.deploy_report_wait_s),
    )
    outcomes = _run_all(jobs, plan, parallel or s.deploy_parallel)
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        print_json([o.__dict__ for o in outcomes])
    elif len(outcomes) == 1:
        if failed:
            fail(_line(failed[0]))
        typer.echo(_line(outcomes[0]))
    else:
        for o in outcomes:
            typer.echo(_line(o))
        typer.echo(f"{len(outcomes) - len(failed)} of {len(outcomes)} deployed")
    if failed:
        raise typer.Exit(1)


def _status_table(agents: list[AgentStatus], server_version: str) -> None:
    def behind(a: AgentStatus) -> str:
        return "?" if a.behind is None else ("yes" if a.behind else "no")

    print_table(
        ("HOST", "STATUS", "VERSION", "BEHIND", "SPOOL", "CERT ENDS", "SEEN"),
        (
            (
                a.host,
                a.status.value,
                a.version or "-",
                behind(a),
                "-" if a.spool_backlog is None else str(a.spool_backlog),
                "-" if a.cert_not_after is None else f"{a.cert_not_after:%Y-%m-%d %H:%M}",
                age(a.last_seen),
            )
            for a in agents
        ),
    )
    typer.echo(f"server {server_version}; {len(agents)} agent(s)")


@reader
def status(conn: Connection, as_json: JsonOpt = False) -> None:
    """Every agent the server knows: version, last seen, spool backlog, certificate's end."""
    with conn.client() as client:
        answer = client.agents()
    if as_json:
        print_json(answer.model_dump(mode="json"))
        return
    print_listing(
        answer.agents, False, "no agent has reported yet",
        lambda: _status_table(answer.agents, answer.server_version),
    )  # fmt: skip


deploy_command = reader(deploy)
