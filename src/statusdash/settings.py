"""One settings object, built at the entry point and passed down.

The seed system's environment names work as they are (``STATUS_PORT``, ``MTLS_ENABLED``, ...);
a ``.env`` file in the working directory is read; command-line flags override both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from statusdash.errors import StatusdashError

MIN_SECRET_LEN = 32
MIN_PASSWORD_LEN = 12
_ROUTE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # a NOTIFY_URLS name (notify_apprise.NAME)
GROUP_LABELS = ("rule", "severity", "host", "subject")  # what NOTIFY_GROUP_BY may name


class MissingSecretError(StatusdashError):
    """A secret the server needs has no value (no secret has a default)."""


class Settings(BaseSettings):
    """Everything configurable. Field names are the seed's environment names, lower-cased."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        use_attribute_docstrings=True,
    )

    # --- server ------------------------------------------------------------------------------
    status_port: int = Field(5000, ge=1, le=65535)
    """Port the server listens on."""
    status_bind: str = "127.0.0.1"
    """Address to bind; 0.0.0.0 to take agents from other hosts."""
    public_url: str | None = None
    """URL agents and readers use to reach the server, when it is not the bind address."""
    cors_origin: str | None = None
    """The one allowed CORS origin (none by default)."""
    token_ttl_s: int = Field(3600, ge=5, le=30 * 86400)
    """Lifetime of a reader token, in seconds; the TUI renews its token before it ends."""
    token_session_max_s: int = Field(7 * 86400, ge=60)
    """Longest a login lasts through renewals, in seconds; then the password is asked again."""
    login_max_failures: int = Field(5, ge=1)
    """Failed logins allowed per address per window; then 429 until they age out."""
    login_window_s: int = Field(300, ge=1)
    """The window of the failed-login count, in seconds."""

    # --- restarts and shutdown (docs/alerts.md, "Restarts") ---------------------------------
    alert_start_grace_s: float = Field(60.0, ge=0, le=3600)
    """Seconds after start during which a host not heard from since is not judged offline.

    A host's grace is at least 3 of its own intervals. The default bridges a restart: agents
    retry a refused connection at most 10 s apart (the agent's connection-error backoff cap,
    docs/agent.md), so with the default 10 s interval they are back well within 60 s. A host
    still silent when its grace ends is judged by its last report before the restart.
    """
    shutdown_grace_s: float = Field(1.5, gt=0, le=60)
    """At SIGTERM, seconds streams get to take their 1001 close, then seconds requests in flight
    get to finish (uvicorn's timeout_graceful_shutdown) before the rest is cut: with the default
    the server exits within 5 s whatever is connected."""

    # --- connection limits (docs/security.md) --------------------------------------------------
    conn_header_timeout_s: float = Field(10.0, gt=0)
    """Seconds a connection has to send complete request headers (and an anonymous one to idle)."""
    conn_handshake_timeout_s: float = Field(10.0, gt=0)
    """Seconds a client has to finish the TLS handshake."""
    conn_accept_lag_s: float = Field(0.1, gt=0)
    """Accept no new TLS connection while the event loop runs this late (s): a reconnect storm
    waits in the listen backlog instead of timing out mid-handshake (server/accept.py)."""
    conn_max_handshakes: int = Field(1024, ge=1)
    """TLS handshakes in progress at once; more connections wait in the listen backlog."""
    conn_body_timeout_s: float = Field(30.0, gt=0)
    """Seconds a request has to deliver its whole body once its headers are in (408 past it)."""
    conn_max_unauth_per_addr: int = Field(32, ge=1)
    """Open connections per client address that have not authenticated; more are closed."""
    conn_max_unauth: int = Field(512, ge=1)
    """Open connections in total that have not authenticated; more are closed."""
    conn_keep_alive_s: int = Field(75, ge=1)
    """Seconds an authenticated kept-alive connection may idle (agents close theirs at 70)."""
    token_max_body_bytes: int = Field(4096, ge=256)
    """Largest body the token endpoint reads (the login form)."""
    trusted_proxies: str = ""
    """Comma-separated addresses or CIDRs of proxies whose X-Forwarded-For is believed."""

    # --- secrets (no defaults: a server without them refuses to start) -----------------------
    status_admin_password: SecretStr | None = None
    """The reader login password (user ``admin``); at least 12 characters."""
    status_jwt_secret: SecretStr | None = None
    """The key that signs reader tokens; at least 32 characters."""

    # --- trust --------------------------------------------------------------------------------
    mtls_enabled: bool = True
    """Serve HTTPS and require client certificates from our CA."""
    allow_api_keys: bool = False
    """Accept API keys from agents even while mTLS is on."""
    vault_path: Path = Path("vault/certs")
    """The CA, server and client certificates (``statusdash certs``)."""

    # --- sessions -----------------------------------------------------------------------------
    stream_recheck_s: float = Field(1.0, gt=0, le=60)
    """How often open streams are checked for a revoked certificate or an expired token, in s."""

    # --- thresholds (the alert rules' defaults, and the TUI's and CLI's markers) --------------
    cpu_threshold: float = Field(90, ge=0, le=100)
    """CPU percent at which a host is past its threshold."""
    memory_threshold: float = Field(85, ge=0, le=100)
    """Memory percent at which a host is past its threshold."""
    disk_threshold: float = Field(90, ge=0, le=100)
    """Disk percent (per mount) at which a host is past its threshold."""

    # --- storage ------------------------------------------------------------------------------
    status_data_dir: Path = Path("data")
    """The database and, by default, its backups."""
    db_synchronous: str = Field("FULL", pattern="^(FULL|NORMAL)$")
    """SQLite's synchronous mode for the WAL (NORMAL may lose the last commits on power loss)."""

    # --- prometheus (docs/metrics.md) --------------------------------------------------------
    metrics_fleet: bool = False
    """GET /metrics also carries each host's latest host-level values and its status."""

    # --- labelled series queries (issue 13: docs/series.md) -----------------------------------
    history_max_series: int = Field(50, ge=1, le=2000)
    """Most series one history answer carries; past it the answer says truncated and the total."""
    selector_max_regex: int = Field(256, ge=1, le=1024)
    """Longest regex a selector's =~ or !~ matcher may carry (RE2, so matching stays linear)."""

    # --- ingest limits (one agent cannot hurt another: docs/security.md) ----------------------
    max_batch_bytes: int = Field(4 * 1024 * 1024, ge=64 * 1024, le=16 * 1024 * 1024)
    """Largest POST /api/metrics/batch body, in bytes (413 past it); the agent sends <= 2 MiB."""
    ingest_max_reports_per_interval: int = Field(3, ge=1, le=10_000)
    """New reports stored per host per interval_s of collected_at; more are refused with 429."""
    ingest_min_interval_s: float = Field(0.1, gt=0, le=3600)
    """The shortest window the per-host limit counts in, whatever interval_s a report claims."""

    # --- alerts, service health, stream, webhooks (docs/alerts.md) ----------------------------
    alert_rules_file: Path | None = None
    """The rules file (TOML or YAML); re-read on SIGHUP."""
    webhook_urls: str = ""
    """Comma-separated http(s) webhook targets, POSTed our JSON payload (email, chat and push:
    NOTIFY_URLS)."""
    alert_check_interval_s: float = Field(5.0, gt=0)
    """Period of the offline check, service staleness and silence expiry, in seconds."""
    service_expect_s: float = Field(180.0, gt=0)
    """Seconds without news before a service is unknown (unless it names its own)."""
    stream_queue_size: int = Field(1024, ge=8)
    """Messages a live-stream reader may lag behind before it is told to resync."""
    webhook_attempts: int = Field(5, ge=1)
    """Attempts per webhook delivery."""
    webhook_backoff_s: float = Field(1.0, gt=0)
    """Delay before the first webhook retry, doubling per attempt."""
    webhook_timeout_s: float = Field(10.0, gt=0)
    """Timeout of one webhook attempt, in seconds."""

    # --- notifications through Apprise, routing, maintenance (docs/alerts.md: Notifications) ---
    notify_urls: SecretStr | None = None
    """Apprise URLs (mailto://, slack://, ntfys://, tgram:// ...), comma- or space-separated,
    each optionally ``name=URL`` for routing; they hold credentials and are never logged."""
    notify_routes: str = ""
    """Default routes by severity, e.g. ``critical=pager,chat warning=chat``: the NOTIFY_URLS
    names an alert of that severity goes to when its rule names none; unset: all of them."""
    notify_deadline_s: float = Field(30.0, gt=0, le=600)
    """Total time one Apprise delivery attempt may take (it runs in a thread); past it the
    attempt fails and is retried, and nothing else waits for it."""
    notify_max_hung: int = Field(4, ge=1, le=100)
    """Attempts to one NOTIFY_URLS target still stuck past their deadline before that target
    refuses new ones (each holds a thread) until they end."""
    maintenance_max_windows: int = Field(1000, ge=1, le=100_000)
    """Maintenance windows that may be open or planned at once; more are refused (409)."""

    # --- notification grouping and heartbeat (docs/alerts.md: Grouping, Heartbeat) ----------
    notify_group_wait_s: float = Field(30.0, ge=0, le=3600)
    """Seconds a new group of alerts waits to gather the rest of an outage before its first
    message; 0 turns grouping off (every notice alone)."""
    notify_group_interval_s: float = Field(300.0, gt=0, le=86_400)
    """Seconds between a group's messages: changes after its first message wait this long from
    the last one and go out together as an update."""
    notify_group_by: str = "rule,severity"
    """Comma-separated alert fields that make a group's key: any of rule, severity, host,
    subject; empty puts every alert in one group."""
    notify_group_max_lines: int = Field(100, ge=1, le=10_000)
    """Alerts listed in a grouped message's text (what NOTIFY_URLS targets show); the JSON
    payload lists all."""
    notify_group_max_alerts: int = Field(10_000, ge=1)
    """Alert notices buffered in groups; past it, only a host with none buffered gets one in
    (the rest wait in the outbox)."""
    heartbeat_url: SecretStr | None = None
    """A dead-man's-switch URL (e.g. healthchecks.io) the server GETs while it is healthy;
    unset: no heartbeat."""
    heartbeat_interval_s: float = Field(60.0, gt=0, le=86_400)
    """Seconds between heartbeats."""
    heartbeat_timeout_s: float = Field(10.0, gt=0, le=600)
    """Timeout of one heartbeat request (and of its health check), in seconds; at most the
    interval."""

    # --- alerting limits ---------------------------------------------------------------------
    max_event_alerts_per_host: int = Field(50, ge=1)
    """Open alerts one host may raise by SYSTEM_ALERT_TRIGGERED events; past it, 429."""
    max_services_per_host: int = Field(200, ge=1)
    """Services one host may track through health events; a new one past it, 429."""
    webhook_queue_size: int = Field(1000, ge=1)
    """Notices waiting for delivery; the rest wait in the outbox, most urgent first."""
    webhook_concurrency: int = Field(8, ge=1)
    """Notices delivered at once (each to every target)."""

    # --- restore (docs/history.md, "What a restore keeps") -----------------------------------
    restore_refill_max_requests: int = Field(16, ge=1, le=1000)
    """Refill batches (kept reports agents send again after a restore) taken at once; more
    are answered 503 with a Retry-After, so live reports stay quick while a fleet refills."""
    restore_refill_retry_s: int = Field(2, ge=1, le=300)
    """The Retry-After, in seconds, of a refill batch refused by that limit."""

    # --- history tiers, retention, backups (docs/history.md) ---------------------------------
    retention_days: int = Field(30, ge=1, le=3650)
    """How long 1-minute rollups are kept; reports older than this are refused."""
    raw_retention_hours: float = Field(48, ge=1)
    """How long raw samples are kept."""
    hourly_retention_days: int = Field(365, ge=1, le=3650)
    """How long 1-hour rollups are kept."""
    replay_window_hours: float = Field(6, ge=0)
    """Raw rows stay at least this long after they arrive, so a replayed report is a duplicate."""
    # --- labelled series engine (issue 13, docs/history.md "Labelled series") -----------------
    max_series_per_host: int = Field(2000, ge=1, le=1_000_000)
    """Labelled series a host may have; past it new series are dropped (the report is kept)."""
    tsdb_chunk_span_s: int = Field(3600, ge=3600, le=86400)
    """Window of a raw chunk, in seconds: whole hours dividing a day."""
    tsdb_compact_interval_s: float = Field(60, gt=0)
    """Period of the compaction job (head rows of closed windows -> chunks), in seconds."""
    tsdb_compact_grace_s: float = Field(30, ge=0, le=3600)
    """A window is compacted this long after it closes, so reports in flight land in the head."""
    rollup_interval_s: float = Field(10, gt=0)
    """Period of the rollup job, in seconds."""
    prune_interval_s: float = Field(3600, gt=0)
    """Period of the retention job, in seconds."""
    backup_interval_hours: float = Field(24, ge=0)
    """Period of scheduled backups, in hours; 0 turns them off."""
    backup_keep: int = Field(7, ge=1)
    """Scheduled backups kept; older ones are removed."""
    backup_dir: Path | None = None
    """Where scheduled backups go; unset: STATUS_DATA_DIR/backups."""

    # --- public status page (docs/status-page.md) -----------------------------------------
    status_page: bool = False
    """Serve the public status page, ``/status`` and ``/status.json``, to anyone."""
    status_page_show_hosts: bool = False
    """Name each host of a group on the public status page; off, no host name appears."""
    status_page_config: Path | None = None
    """The status page's TOML file: title, services, host groups (docs/status-page.md)."""
    status_page_refresh_s: int = Field(60, ge=5, le=3600)
    """Seconds between the page's own reloads in the browser (its meta refresh)."""
    status_page_state_max_age_s: float = Field(5.0, ge=0, le=300)
    """How old the page's current state may be when served, in seconds; 0 renders every request."""
    status_page_bars_interval_s: float = Field(300, ge=1)
    """Period of the job that recomputes the 90-day availability bars, in seconds."""

    # --- agent -------------------------------------------------------------------------------
    api_key: SecretStr | None = None
    """The agent's fallback credential (``statusdash keys issue HOST``)."""

    # --- enrollment (docs/trust.md: Enrollment) ----------------------------------------------
    enroll_cert_days: int = Field(30, ge=1, le=3650)
    """Lifetime, in days, of the certificates the server signs for enrolling and renewing agents."""
    enroll_max_body_bytes: int = Field(16384, ge=1024)
    """Largest body of an enrollment or renewal request (a token and a CSR), in bytes."""
    enroll_pending_max: int = Field(100, ge=1)
    """Enrollment requests waiting for an operator's approval at once; more are refused (429)."""
    enroll_wait_s: float = Field(3600.0, gt=0)
    """How long ``statusdash agent enroll`` waits for an operator's approval, in seconds."""
    enroll_poll_max_s: float = Field(60.0, ge=1)
    """Longest pause between two polls of a waiting ``agent enroll`` (it backs off up to this)."""

    # --- agent deploy over SSH (docs/agent.md: Deploying agents) ------------------------------
    deploy_ssh_timeout_s: float = Field(15.0, gt=0, le=300)
    """``agent deploy``: longest wait for an SSH connection to a host (ssh's ConnectTimeout)."""
    deploy_step_timeout_s: float = Field(600.0, gt=0, le=7200)
    """``agent deploy``: longest one remote step may take (pushing wheels, the install)."""
    deploy_report_wait_s: float = Field(90.0, gt=0, le=3600)
    """``agent deploy``: how long to wait for the server to have the host's first report."""
    deploy_parallel: int = Field(8, ge=1, le=256)
    """``agent deploy --all``: hosts deployed at once (the default of ``--parallel``)."""

    # --- clients (CLI, TUI, agent) -------------------------------------------------------------
    statusdash_server: str | None = None
    """The server URL clients use (else PUBLIC_URL, else the bind address)."""
    statusdash_ca: Path | None = None
    """The CA certificate clients trust (else VAULT_PATH/ca/ca.crt)."""
    statusdash_token: SecretStr | None = None
    """A reader token, instead of the one ``statusdash login`` keeps."""

    @field_validator("notify_routes")
    @classmethod
    def _routes(cls, value: str) -> str:
        for part in value.replace(";", " ").split():
            sev, sep, names = part.partition("=")
            if not sep or sev not in ("critical", "warning", "info"):
                raise ValueError(
                    f"{part!r}: write SEVERITY=NAME[,NAME...] with a severity of critical,"
                    " warning or info, e.g. critical=pager,chat warning=chat"
                )
            bad = [n for n in names.split(",") if n and not _ROUTE_NAME.fullmatch(n)]
            if bad:
                raise ValueError(f"{part!r}: {bad[0]!r} is not a NOTIFY_URLS name")
        return value

    @field_validator("tsdb_chunk_span_s")
    @classmethod
    def _whole_hours_dividing_a_day(cls, value: int) -> int:
        if value % 3600 or 86400 % value:
            raise ValueError(
                f"{value} s: a chunk spans whole hours that divide a day"
                " (3600, 7200, 10800, 14400, 21600, 28800, 43200 or 86400)"
            )
        return value

    @field_validator("notify_group_by")
    @classmethod
    def _known_group_labels(cls, value: str) -> str:
        unknown = [p.strip() for p in value.split(",") if p.strip() not in ("", *GROUP_LABELS)]
        if unknown:
            raise ValueError(f"unknown label {unknown[0]!r}; use any of {', '.join(GROUP_LABELS)}")
        return value

    # ------------------------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.status_data_dir / "statusdash.db"

    @property
    def backups_path(self) -> Path:
        """Where scheduled backups go: BACKUP_DIR, else STATUS_DATA_DIR/backups."""
        return self.backup_dir or self.status_data_dir / "backups"

    @property
    def ca_cert(self) -> Path:
        return self.vault_path / "ca" / "ca.crt"

    def server_url(self) -> str:
        """The URL clients use when no ``--server`` is given."""
        if self.statusdash_server:
            return self.statusdash_server.rstrip("/")
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.mtls_enabled else "http"
        host = "127.0.0.1" if self.status_bind in ("0.0.0.0", "::", "") else self.status_bind
        return f"{scheme}://{host}:{self.status_port}"

    def require_server_secrets(self) -> None:
        """Refuse to start a server without its secrets, naming each and how to make it."""
        problems: list[str] = []
        pw = self.status_admin_password.get_secret_value() if self.status_admin_password else ""
        key = self.status_jwt_secret.get_secret_value() if self.status_jwt_secret else ""
        if not pw:
            problems.append("STATUS_ADMIN_PASSWORD is not set")
        elif len(pw) < MIN_PASSWORD_LEN:
            problems.append(f"STATUS_ADMIN_PASSWORD is shorter than {MIN_PASSWORD_LEN} characters")
        if not key:
            problems.append("STATUS_JWT_SECRET is not set")
        elif len(key) < MIN_SECRET_LEN:
            problems.append(f"STATUS_JWT_SECRET is shorter than {MIN_SECRET_LEN} characters")
        if problems:
            raise MissingSecretError(
                "; ".join(problems)
                + ". Run `make setup` (writes .env with freshly generated secrets) or set them"
                " in the environment, e.g. STATUS_JWT_SECRET=$(python3 -c"
                " 'import secrets; print(secrets.token_urlsafe(48))')."
            )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from env and ``.env``; ``overrides`` (CLI flags) win when not None."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
