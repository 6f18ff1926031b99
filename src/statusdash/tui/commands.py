"""Command palette providers: jump to any host, switch screens, sort the fleet."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from statusdash import units
from statusdash.tui import fmt
from statusdash.tui.model import SortKey

if TYPE_CHECKING:
    from statusdash.tui.app import StatusdashApp

MAX_DISCOVERY = 50


class HostCommands(Provider):
    """``open <host>`` for every host of the fleet, with its status and CPU as help."""

    @property
    def sd(self) -> StatusdashApp:
        return cast("StatusdashApp", self.app)

    def _hosts(self) -> list[tuple[str, str]]:
        out = []
        for host, row in sorted(self.sd.model.rows.items()):
            h = row.summary
            cpu = units.percent(h.cpu_percent)
            out.append((host, f"{fmt.host_marker(h)} {h.status.value} · cpu {cpu}"))
        return out

    async def discover(self) -> Hits:
        for host, help_text in self._hosts()[:MAX_DISCOVERY]:
            yield DiscoveryHit(f"open {host}", partial(self.sd.open_host, host), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for host, help_text in self._hosts():
            text = f"open {host}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(text),
                    partial(self.sd.open_host, host),
                    text=text,
                    help=help_text,
                )


class ScreenCommands(Provider):
    """Screen switches and fleet sort orders, so everything is reachable from the palette."""

    @property
    def sd(self) -> StatusdashApp:
        return cast("StatusdashApp", self.app)

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        sd = self.sd
        cmds: list[tuple[str, str, Callable[[], object]]] = [
            ("show fleet", "all hosts (f)", partial(sd.switch_mode, "fleet")),
            ("show alerts", "active alerts (a)", partial(sd.switch_mode, "alerts")),
            ("show services", "service health (v)", partial(sd.switch_mode, "services")),
        ]
        for key in SortKey:
            cmds.append(
                (f"sort fleet by {key.value}", "s cycles the sort", partial(sd.sort_by, key))
            )
        return cmds

    async def discover(self) -> Hits:
        for text, help_text, cb in self._commands():
            yield DiscoveryHit(text, cb, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, cb in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), cb, text=text, help=help_text)
