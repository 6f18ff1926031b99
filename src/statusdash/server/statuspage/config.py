"""The status page's config file (``STATUS_PAGE_CONFIG``, TOML): title, services, host groups.

A group selects hosts by host-id globs today; the selector is its own model so a
``tags = {...}`` selector can join ``hosts`` later without changing the file's shape.
"""

from __future__ import annotations

import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from statusdash.errors import Invalid

DEFAULT_TITLE = "Status"
ALL_HOSTS = "All hosts"


class StatusPageConfigError(Invalid):
    """The status page's config file cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceEntry(_Strict):
    """A service shown on the page: the name agents report it under, and how it is labelled."""

    name: str = Field(min_length=1, max_length=255)
    label: str | None = Field(default=None, min_length=1, max_length=100)

    @property
    def shown(self) -> str:
        return self.label or self.name


class GroupEntry(_Strict):
    """A host group: the hosts whose id matches any of ``hosts`` (case-sensitive globs)."""

    name: str = Field(min_length=1, max_length=100)
    hosts: tuple[str, ...] = Field(min_length=1)

    def matches(self, host_id: str) -> bool:
        return any(fnmatchcase(host_id, glob) for glob in self.hosts)


class PageConfig(_Strict):
    """The whole file; ``services=None`` (no file, or no ``[[services]]``) means every service."""

    title: str = Field(default=DEFAULT_TITLE, min_length=1, max_length=100)
    services: tuple[ServiceEntry, ...] | None = Field(default=None, min_length=1)
    groups: tuple[GroupEntry, ...] = Field(
        default=(GroupEntry(name=ALL_HOSTS, hosts=("*",)),), min_length=1
    )

    def label(self, service: str) -> str | None:
        """The shown name of ``service``; None if the page does not list it."""
        if self.services is None:
            return service
        for entry in self.services:
            if entry.name == service:
                return entry.shown
        return None

    def groups_of(self, host_id: str) -> list[str]:
        return [g.name for g in self.groups if g.matches(host_id)]


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "file"


def load_config(path: Path | None) -> PageConfig:
    """The config at ``path`` (None: the defaults); StatusPageConfigError says what is wrong."""
    if path is None:
        return PageConfig()
    if path.suffix.lower() != ".toml":
        raise StatusPageConfigError(f"STATUS_PAGE_CONFIG {path}: use a .toml file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        config = PageConfig.model_validate(raw)
    except OSError as exc:
        raise StatusPageConfigError(f"STATUS_PAGE_CONFIG {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise StatusPageConfigError(f"STATUS_PAGE_CONFIG {path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        where = _where(tuple(e["loc"]))
        raise StatusPageConfigError(
            f"STATUS_PAGE_CONFIG {path}: {where}: {e['msg']}{more}"
        ) from None
    names = [g.name for g in config.groups]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise StatusPageConfigError(f"STATUS_PAGE_CONFIG {path}: two groups named {dup!r}")
    return config
