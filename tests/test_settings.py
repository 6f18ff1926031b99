"""Settings: every field described, every documented name works, defaults in one place."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from statusdash.server.alerts.config import AlertingConfig
from statusdash.server.jobs import build_jobs
from statusdash.server.rollups import Retention
from statusdash.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")
# Upper-case names the README mentions that are not server settings.
NOT_SETTINGS = {"NO_COLOR", "SYSTEM_SERVICE_HEALTHY", "SYSTEM_SERVICE_UNHEALTHY"}


def documented_names() -> set[str]:
    """Every variable .env.example sets (or shows commented out) and every one the README names."""
    example = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    names |= set(NAME.findall((ROOT / "README.md").read_text())) - NOT_SETTINGS
    return names


def a_value_for(field: str) -> tuple[str, Any]:
    """A valid env value for ``field`` that differs from its default, and what it reads as."""
    info = Settings.model_fields[field]
    default = info.default
    kind = typing.get_args(info.annotation) or (info.annotation,)
    if field == "db_synchronous":
        return "NORMAL", "NORMAL"
    if field == "notify_group_by":
        return "host", "host"
    if field == "notify_routes":
        return "critical=pager", "critical=pager"
    if field == "tsdb_chunk_span_s":  # whole hours that divide a day
        return "7200", 7200
    if bool in kind:
        return str(not default).lower(), not default
    if int in kind:
        return str(default + 1), default + 1
    if float in kind:
        return str(default + 1.5), default + 1.5
    if Path in kind:
        return f"/srv/{field}", Path(f"/srv/{field}")
    if SecretStr in kind:
        return "s" * 40, "s" * 40
    return f"https://{field}.example", f"https://{field}.example"


def test_every_field_has_a_description() -> None:
    missing = [n for n, f in Settings.model_fields.items() if not (f.description or "").strip()]
    assert missing == []
    assert Settings.model_fields["status_port"].description == "Port the server listens on."


def test_the_documented_names_are_settings() -> None:
    names = documented_names()
    assert {"STATUS_PORT", "CPU_THRESHOLD", "WEBHOOK_URLS", "VAULT_PATH"} <= names
    unknown = sorted(n for n in names if n.lower() not in Settings.model_fields)
    assert unknown == []


@pytest.mark.parametrize("name", sorted(documented_names()))
def test_every_documented_env_name_still_works(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    field = name.lower()
    raw, expected = a_value_for(field)
    monkeypatch.setenv(name, raw)
    value = getattr(Settings(_env_file=None), field)
    got = value.get_secret_value() if isinstance(value, SecretStr) else value
    assert got == expected and got != Settings.model_fields[field].default


def test_the_services_read_their_knobs_from_settings_alone(tmp_path: Path) -> None:
    """Non-default settings reach the alerting config, the retention and the jobs unchanged."""
    s = Settings(
        _env_file=None,
        status_data_dir=tmp_path,
        alert_check_interval_s=7.5,
        service_expect_s=99.0,
        stream_queue_size=64,
        webhook_urls="https://hooks.example/x",
        webhook_attempts=2,
        webhook_backoff_s=0.5,
        webhook_timeout_s=3.0,
        raw_retention_hours=5,
        retention_days=9,
        hourly_retention_days=40,
        replay_window_hours=1,
        rollup_interval_s=4,
        prune_interval_s=50,
        backup_interval_hours=2,
        backup_keep=3,
    )
    cfg = AlertingConfig.from_settings(s)
    assert (cfg.check_interval_s, cfg.service_expect_s, cfg.stream_queue) == (7.5, 99.0, 64)
    assert (cfg.webhook_attempts, cfg.webhook_backoff_s, cfg.webhook_timeout_s) == (2, 0.5, 3.0)
    assert [t.format for t in cfg.webhooks] == ["json"]
    assert Retention.from_settings(s) == Retention(5 * 3600, 9 * 86400, 40 * 86400, 3600)
    jobs = build_jobs(s).scheduler.jobs
    assert (jobs["rollup"].interval_s, jobs["retention"].interval_s) == (4, 50)
    assert jobs["backup"].interval_s == 2 * 3600
    assert s.backups_path == tmp_path / "backups"
    assert Settings(_env_file=None, backup_dir=tmp_path / "b").backups_path == tmp_path / "b"
