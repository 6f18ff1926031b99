"""``statusdash agent run`` and ``statusdash agent install-service``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from statusdash.cli.agent_deploy import deploy_command
from statusdash.cli.agent_deploy import status as status_command
from statusdash.cli.agent_enroll import enroll as enroll_command
from statusdash.cli.boundary import fail, group
from statusdash.cli.common import ServerOpt, settings

if TYPE_CHECKING:
    from statusdash.agent.config import AgentConfig

app = group(help="Run the agent that pushes this host's metrics.")
app.command("enroll")(enroll_command)
app.command("deploy")(deploy_command)
app.command("status")(status_command)

NO_EXEC_ENV = "STATUSDASH_AGENT_NO_EXEC"
DEFAULT_SERVICES = Path("/etc/statusdash/services.yaml")

IntervalOpt = Annotated[
    float,
    typer.Option(
        "--interval", min=0.1, max=86400, envvar="STATUSDASH_AGENT_INTERVAL",
        help="seconds between reports",
    ),
]  # fmt: skip
HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host-id", envvar="STATUSDASH_AGENT_HOST_ID",
        help="this host's id (default: the hostname, lowercased)",
    ),
]  # fmt: skip
CertsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--certs-dir",
        help="vault with ca/ca.crt and clients/HOST.crt|.key (env VAULT_PATH)",
    ),
]
ServicesOpt = Annotated[
    Path | None,
    typer.Option(
        "--services", envvar="STATUSDASH_AGENT_SERVICES",
        help=f"services.yaml: service checks to run and report (default: {DEFAULT_SERVICES}"
        " if it exists)",
    ),
]  # fmt: skip
SpoolOpt = Annotated[
    Path | None,
    typer.Option(
        "--spool-dir", envvar="STATUSDASH_AGENT_SPOOL_DIR",
        help="where unacknowledged reports wait (default: /var/lib/statusdash/spool as root,"
        " ~/.local/state/statusdash/spool otherwise)",
    ),
]  # fmt: skip


def _host_id(host_id: str | None) -> str:
    from statusdash import hostid

    host = host_id if host_id is not None else hostid.from_hostname()
    if not hostid.is_valid(host):
        fail(
            f"--host-id {host!r} is not a valid host id (lowercase letters, digits, '.', '_',"
            " '-'; at most 63 characters)",
            2,
        )
    return host


def _services(path: Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """services.yaml, checked here (a clear error before the daemon starts) and handed over as
    JSON: the daemon never imports PyYAML. No file given and none at the default: no checks."""
    if path is None:
        if not DEFAULT_SERVICES.is_file():
            return None, None
        path = DEFAULT_SERVICES
    from statusdash.agent.checks.config import load_services

    config = load_services(path)  # a ChecksError is an Invalid: the boundary prints it
    if not config.services:
        return None, None
    return config.to_dict(), str(path)


def _credentials(
    url: str,
    host: str,
    s: Any,
    certs_dir: Path | None,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
    api_key: str | None,
) -> tuple[Path | None, Path | None, Path | None, str | None]:
    """CA, certificate, key and API key: options first, then the vault, then the settings."""
    vault: Path = certs_dir or s.vault_path
    if ca is None:
        if s.statusdash_ca is not None:
            ca = s.statusdash_ca
        elif certs_dir is not None or (vault / "ca" / "ca.crt").exists():
            ca = vault / "ca" / "ca.crt"  # else nothing configured: the system store
    if cert is None and (vault / "clients" / f"{host}.crt").exists():
        cert = vault / "clients" / f"{host}.crt"
        key = key or vault / "clients" / f"{host}.key"
    if key is not None and cert is None:
        fail("--key needs --cert", 2)
    if api_key is None and s.api_key is not None:
        api_key = s.api_key.get_secret_value() or None
    https = url.startswith("https://")
    if not https:
        ca = cert = key = None  # plain HTTP: only an API key can identify us
    if cert is None and not api_key:
        how = f"an API key (`statusdash keys issue {host}`) with --api-key or API_KEY"
        if https:
            how = (
                f"{vault}/clients/{host}.crt and .key (`statusdash certs issue {host}`; or point"
                f" --certs-dir at the vault, or pass --cert/--key), or {how}"
            )
        fail(f"no credentials for host {host!r} at {url}: give {how}")
    for what, path in (("CA certificate", ca), ("client certificate", cert), ("key", key)):
        if path is not None and not path.is_file():
            fail(f"{what} {path} does not exist")
    if https:
        import ssl

        from statusdash.tlsclient import client_context

        try:
            client_context(ca, cert, key)
        except (OSError, ssl.SSLError, ValueError) as exc:
            from statusdash.agent.diagnose import check_certificate

            problems = check_certificate(ca, cert, key) if cert else []
            fail(f"cannot load the TLS files ({ca}, {cert}, {key}): {'; '.join(problems) or exc}")
    return ca, cert, key, api_key


@app.command("run")
def run(
    server: ServerOpt = None,
    interval: IntervalOpt = 10.0,
    host_id: HostOpt = None,
    certs_dir: CertsDirOpt = None,
    ca: Annotated[
        Path | None, typer.Option("--ca", help="CA certificate to trust (env STATUSDASH_CA)")
    ] = None,
    cert: Annotated[Path | None, typer.Option("--cert", help="client certificate")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="key of --cert")] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="API key instead of a certificate (env API_KEY)"),
    ] = None,
    spool_dir: SpoolOpt = None,
    spool_max_mb: Annotated[
        int, typer.Option("--spool-max-mb", min=1, envvar="STATUSDASH_AGENT_SPOOL_MAX_MB")
    ] = 100,
    spool_max_age_h: Annotated[
        float,
        typer.Option("--spool-max-age-h", min=0.01, envvar="STATUSDASH_AGENT_SPOOL_MAX_AGE_H"),
    ] = 168.0,
    keep_acked: Annotated[
        str | None,
        typer.Option(
            "--keep-acked",
            envvar=["STATUSDASH_AGENT_KEEP_ACKED", "AGENT_KEEP_ACKED"],
            help="how long acknowledged reports are kept to refill a restored server"
            " (24h; 0 keeps none; docs/agent.md)",
        ),
    ] = None,
    keep_acked_mb: Annotated[
        int | None,
        typer.Option(
            "--keep-acked-mb",
            min=0,
            envvar="STATUSDASH_AGENT_KEEP_ACKED_MB",
            help="byte cap of the acknowledged reports kept, MiB (32; 0 keeps none)",
        ),
    ] = None,
    mount: Annotated[
        list[str] | None,
        typer.Option(
            "--mount",
            envvar="STATUSDASH_AGENT_MOUNTS",
            help="also report this mount point (repeatable; pseudo filesystems included)",
        ),
    ] = None,
    top_processes: Annotated[
        int,
        typer.Option(
            "--top-processes",
            min=1,
            max=50,
            envvar="STATUSDASH_AGENT_TOP_PROCESSES",
            help="how many processes to report by CPU and by memory each (10)",
        ),
    ] = 10,
    backoff_max: Annotated[
        float, typer.Option("--backoff-max", min=1, help="longest wait between retries, seconds")
    ] = 60.0,
    backoff_connect_max: Annotated[
        float | None,
        typer.Option(
            "--backoff-connect-max",
            min=1,
            help="longest wait between retries while the server cannot be reached (a restart),"
            " seconds; at most --backoff-max (default in docs/agent.md)",
        ),
    ] = None,
    push_timeout: Annotated[
        float,
        typer.Option(
            "--push-timeout",
            min=1,
            max=600,
            envvar="STATUSDASH_AGENT_PUSH_TIMEOUT",
            help="longest one request to the server may take, all of it, seconds",
        ),
    ] = 20.0,
    response_max_kb: Annotated[
        int,
        typer.Option(
            "--response-max-kb",
            min=1,
            max=16384,
            envvar="STATUSDASH_AGENT_RESPONSE_MAX_KB",
            help="longest answer read from the server; a longer one is a failure",
        ),
    ] = 64,
    services: ServicesOpt = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            envvar="STATUSDASH_AGENT_TAGS",
            help="KEY=VALUE host tag sent on every report (repeat; env: space-separated);"
            " the server's tags win",
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="push one report and exit")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print one report as JSON; send nothing")
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="STATUSDASH_AGENT_LOG_LEVEL")
    ] = "info",
) -> None:
    """Collect this host's metrics every --interval seconds and push them to the server."""
    from statusdash.agent.config import AgentConfig, default_spool_dir

    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        fail(f"--log-level must be debug, info, warning or error, not {log_level!r}", 2)
    host = _host_id(host_id)
    checks, checks_file = _services(services)
    tags = _tags(tag or [])
    if dry_run:
        _dry_run(host, interval, tuple(mount or ()), checks, tags, top_processes)
        return
    s = settings()
    url = (server or s.server_url()).rstrip("/")
    if not url.startswith(("http://", "https://")):
        fail(f"--server {url!r} must start with https:// or http://", 2)
    ca_, cert_, key_, key_value = _credentials(url, host, s, certs_dir, ca, cert, key, api_key)
    keep: dict[str, Any] = {}  # unset: AgentConfig's defaults, the one home of the numbers
    if keep_acked is not None:
        from statusdash import durations

        try:
            keep["keep_acked_s"] = durations.parse(keep_acked, bare_unit="h")
        except ValueError as exc:
            fail(f"--keep-acked: {exc}", 2)
    if keep_acked_mb is not None:
        keep["keep_acked_max_bytes"] = keep_acked_mb * 1024 * 1024
    if backoff_connect_max is not None:
        keep["backoff_connect_max_s"] = backoff_connect_max
    cfg = AgentConfig(
        server_url=url,
        host_id=host,
        interval_s=interval,
        ca=ca_,
        cert=cert_,
        key=key_,
        api_key=key_value,
        spool_dir=spool_dir or default_spool_dir(),
        spool_max_bytes=spool_max_mb * 1024 * 1024,
        spool_max_age_s=spool_max_age_h * 3600,
        extra_mounts=tuple(mount or ()),
        top_processes=top_processes,
        backoff_max_s=backoff_max,
        push_timeout_s=push_timeout,
        response_max_bytes=response_max_kb * 1024,
        log_level=log_level.upper(),
        services=checks,
        services_file=checks_file,
        tags=tags,
        **keep,
    )
    if once:
        _once(cfg)
        return
    _daemon(cfg)


def _tags(pairs: list[str]) -> dict[str, str]:
    from statusdash import tagtext

    try:
        return tagtext.parse_pairs(pairs)
    except tagtext.TagError as exc:
        fail(f"--tag: {exc}", 2)


def _dry_run(
    host: str,
    interval: float,
    mounts: tuple[str, ...],
    checks: dict[str, Any] | None,
    tags: dict[str, str],
    top_processes: int = 10,
) -> None:
    import json
    import time

    from statusdash import wire
    from statusdash.agent.checks.config import parse_services
    from statusdash.agent.checks.run import run_checks
    from statusdash.agent.runner import ONCE_SAMPLE_S
    from statusdash.agent.sampler import Collector

    collector = Collector(host, interval, mounts, top_processes=top_processes)
    t0 = time.monotonic()
    results = run_checks(parse_services(checks)) if checks else []
    time.sleep(max(0.0, ONCE_SAMPLE_S - (time.monotonic() - t0)))  # after the priming sample
    report = collector.collect()
    report["services"] = results
    if tags:
        report["tags"] = tags
    try:
        wire.convert(report)
    except wire.WireError as exc:
        fail(f"the collected report does not validate (a bug, please report it): {exc}")
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


def _once(cfg: AgentConfig) -> None:
    from statusdash.agent.runner import Agent, setup_logging

    setup_logging(cfg.log_level)
    code, message = Agent(cfg).once()
    if code:
        fail(message, code)
    typer.echo(message)


def _daemon(cfg: AgentConfig) -> None:
    """Replace this process by the lean daemon (no Typer, no pydantic: ~15 MB less, for months)."""
    from statusdash.agent.config import CONFIG_ENV

    if os.environ.get(NO_EXEC_ENV) or not sys.executable:
        from statusdash.agent.runner import Agent, setup_logging

        setup_logging(cfg.log_level)
        raise typer.Exit(Agent(cfg).run())
    env = dict(os.environ)
    env[CONFIG_ENV] = cfg.to_json()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, "-m", "statusdash.agent"], env)  # noqa: S606
    except OSError as exc:
        fail(f"cannot start the agent process ({sys.executable}): {exc}")


@app.command("install-service")
def install_service(
    print_only: Annotated[
        bool, typer.Option("--print", help="show the unit and env file; write nothing")
    ] = False,
    user: Annotated[
        str,
        typer.Option(
            "--user",
            help="run as this system user: statusdash (the default) is a systemd DynamicUser,"
            " created while the agent runs; another name must exist; root drops the user",
        ),
    ] = "statusdash",
    env_file: Annotated[
        Path | None, typer.Option("--env-file", help="environment file the unit reads")
    ] = None,
    unit_file: Annotated[Path | None, typer.Option("--unit-file", help="where to write")] = None,
    server: ServerOpt = None,
    host_id: HostOpt = None,
    certs_dir: CertsDirOpt = None,
    spool_dir: SpoolOpt = None,
    interval: Annotated[float | None, typer.Option("--interval", min=0.1)] = None,
    services: Annotated[
        Path | None, typer.Option("--services", help="services.yaml (the agent's --services)")
    ] = None,
) -> None:
    """Write a systemd unit (Restart=always) and its env file, and say how to enable it."""
    import pwd

    from statusdash.agent import service
    from statusdash.fsutil import atomic_write

    unit_path = unit_file or service.UNIT_PATH
    env_path = env_file or service.ENV_PATH
    if not _valid_user(user):
        fail(f"--user {user!r} is not a valid user name", 2)
    exe = Path(sys.executable).with_name("statusdash")
    command = [str(exe), "agent", "run"]
    if not exe.exists():
        command = [sys.executable, "-m", "statusdash.cli.agent", "run"]
    credentials: dict[str, Path] = {}
    if certs_dir is not None:  # systemd hands the vault's files to the unprivileged agent
        credentials = service.credential_files(certs_dir.absolute(), _host_id(host_id))
    for option, name in (("--ca", "ca.crt"), ("--cert", "client.crt"), ("--key", "client.key")):
        if name in credentials:
            command += [option, f"%d/{name}"]  # systemd's credentials directory
    unit = service.render_unit(command, env_path, user, credentials)
    env = service.render_env(
        {
            "STATUSDASH_SERVER": server,
            "STATUSDASH_AGENT_HOST_ID": _host_id(host_id) if host_id else None,
            "VAULT_PATH": str(certs_dir) if certs_dir else None,
            "STATUSDASH_AGENT_SPOOL_DIR": str(spool_dir) if spool_dir else None,
            "STATUSDASH_AGENT_INTERVAL": f"{interval:g}" if interval else None,
            "STATUSDASH_AGENT_SERVICES": str(services.absolute()) if services else None,
            "API_KEY": None,
        }
    )
    try:
        user_exists = bool(pwd.getpwnam(user))
    except KeyError:
        user_exists = False
    hint = service.enable_hint(user, user_exists, unit_path, bool(credentials))
    if print_only:
        typer.echo(f"# {unit_path}\n{unit}\n# {env_path}\n{env}\n# then:\n{hint}")
        return
    try:
        atomic_write(unit_path, unit, 0o644)
        env_written = not env_path.exists()
        if env_written:
            atomic_write(env_path, env, 0o600)
    except OSError as exc:
        fail(
            f"cannot write {exc.filename or unit_path}: {exc.strerror or exc}"
            " (run it with sudo, or use --print)"
        )
    typer.echo(f"wrote {unit_path}")
    typer.echo(f"wrote {env_path}" if env_written else f"kept the existing {env_path}")
    typer.echo(f"next:\n{hint}")


def _valid_user(name: str) -> bool:
    return bool(name) and len(name) <= 32 and all(c.isalnum() or c in "-_." for c in name)


if __name__ == "__main__":
    app()
