"""One settings object, built at the entry point and passed down.

The seed system's environment names work as they are (``STATUS_PORT``, ``MTLS_ENABLED``, ...);
a ``.env`` file in the working directory is read; command-line flags override both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_LEN = 32
MIN_PASSWORD_LEN = 12


class MissingSecretError(RuntimeError):
    """A secret the server needs has no value (no secret has a default)."""


class Settings(BaseSettings):
    """Everything configurable. Field names are the seed's environment names, lower-cased."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # --- server ------------------------------------------------------------------------------
    status_port: int = Field(5000, ge=1, le=65535, description="port the server listens on")
    status_bind: str = Field(
        "127.0.0.1", description="address to bind; 0.0.0.0 to take agents from other hosts"
    )
    public_url: str | None = Field(None, description="URL agents and readers use to reach us")
    cors_origin: str | None = Field(None, description="allowed CORS origin (none by default)")
    status_admin_password: SecretStr | None = Field(None, description="reader login password")
    status_jwt_secret: SecretStr | None = Field(None, description="key that signs reader tokens")
    token_ttl_s: int = Field(3600, ge=60, le=30 * 86400, description="reader token lifetime")
    mtls_enabled: bool = Field(True, description="require client certificates (HTTPS)")
    allow_api_keys: bool = Field(
        False, description="accept API keys from agents even while mTLS is on"
    )
    cpu_threshold: float = Field(90, ge=0, le=100)
    memory_threshold: float = Field(85, ge=0, le=100)
    disk_threshold: float = Field(90, ge=0, le=100)
    retention_days: int = Field(30, ge=1, le=3650)
    status_data_dir: Path = Field(Path("data"), description="database and backups")
    vault_path: Path = Field(Path("vault/certs"), description="CA, server and client certs")
    db_synchronous: str = Field(
        "FULL", pattern="^(FULL|NORMAL)$", description="SQLite synchronous mode for the WAL"
    )
    # --- alerts, service health, stream, webhooks (docs/alerts.md) ----------------------------
    alert_rules_file: Path | None = Field(
        None, description="rules file (TOML or YAML); re-read on SIGHUP"
    )
    webhook_urls: str = Field(
        "",
        description="comma-separated webhook targets; a slack+ or ntfy+ prefix picks the format",
    )
    alert_check_interval_s: float = Field(
        5.0, gt=0, description="offline check, service staleness and silence expiry"
    )
    service_expect_s: float = Field(
        180.0, gt=0, description="seconds without news before a service is unknown"
    )
    stream_queue_size: int = Field(1024, ge=8, description="messages a stream reader may lag")
    webhook_attempts: int = Field(5, ge=1, description="attempts per webhook delivery")
    webhook_backoff_s: float = Field(1.0, gt=0, description="first retry delay, doubling")
    webhook_timeout_s: float = Field(10.0, gt=0, description="timeout per webhook attempt")
    # --- history tiers, retention, backups (docs/history.md) ---------------------------------
    raw_retention_hours: float = Field(48, ge=1, description="how long raw samples are kept")
    hourly_retention_days: int = Field(
        365, ge=1, le=3650, description="how long 1-hour rollups are kept"
    )
    replay_window_hours: float = Field(
        6, ge=0, description="raw rows stay at least this long after they arrive (idempotency)"
    )
    rollup_interval_s: float = Field(10, gt=0, description="rollup job period")
    prune_interval_s: float = Field(3600, gt=0, description="retention job period")
    backup_interval_hours: float = Field(
        24, ge=0, description="scheduled backups; 0 turns them off"
    )
    backup_keep: int = Field(7, ge=1, description="scheduled backups kept")
    backup_dir: Path | None = Field(None, description="default: STATUS_DATA_DIR/backups")
    login_max_failures: int = Field(5, ge=1, description="failed logins per address per window")
    login_window_s: int = Field(300, ge=1)

    # --- agent -------------------------------------------------------------------------------
    api_key: SecretStr | None = Field(None, description="agent fallback credential")

    # --- clients (CLI, TUI, agent) -------------------------------------------------------------
    statusdash_server: str | None = Field(None, description="server URL for clients")
    statusdash_ca: Path | None = Field(None, description="CA certificate clients trust")
    statusdash_token: SecretStr | None = Field(None, description="reader token")

    # ------------------------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.status_data_dir / "statusdash.db"

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
