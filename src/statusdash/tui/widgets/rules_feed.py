"""Keeps the model's alert rules current, so every flag is judged as the server judges it.

The fleet table inherits this: it lives as long as the app (the fleet is the default mode), so
the rules are fetched at start and kept fresh whichever screen is shown. The fetch runs in a
thread worker that only posts a message; the handler updates the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from textual import work
from textual.message import Message
from textual.worker import Worker, WorkerState

from statusdash.client import ApiError, ClientError
from statusdash.schema import RulesInForce
from statusdash.tui.source import DataSource

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from textual.app import App
    from textual.timer import Timer

    from statusdash.tui.app import StatusdashApp

RULES_CHECK_S = 1.0  # how often the model is asked whether it wants the rules again (cheap)


class RulesFeed:
    """A widget mixin that fetches ``GET /api/alerts/rules`` whenever the model wants it.

    A mixin rather than a Widget base, so the widget's CSS type chain stays its own.
    """

    if TYPE_CHECKING:  # what the widget this is mixed into provides
        app: App[Any]

        def set_interval(
            self,
            interval: float,
            callback: Callable[[], Awaitable[Any]] | Callable[[], Any] | None = None,
            *,
            name: str | None = None,
            repeat: int = 0,
            pause: bool = False,
        ) -> Timer: ...

        def post_message(self, message: Message) -> bool: ...

    @dataclass
    class RulesFetched(Message):
        """The rules came (``rules``), the server has none (both empty), or ``error``."""

        rules: RulesInForce | None
        error: str = ""

    _rules_busy = False

    @property
    def _sd(self) -> StatusdashApp:
        return cast("StatusdashApp", self.app)

    def on_mount(self) -> None:
        self.set_interval(RULES_CHECK_S, self.check_rules)
        self.check_rules()

    def check_rules(self) -> None:
        """Fetch the rules if the model wants them and no fetch is under way."""
        app = self._sd
        if self._rules_busy or not app.model.rules_wanted(app.now()):
            return
        self._rules_busy = True
        self._fetch_rules(app.source)

    @work(thread=True, exit_on_error=False, group="rules", exclusive=True)
    def _fetch_rules(self, source: DataSource) -> None:
        try:
            self.post_message(self.RulesFetched(source.rules()))
        except ApiError as exc:
            # 404: a server from before the route; its sentiment's thresholds stay in use.
            self.post_message(self.RulesFetched(None, "" if exc.status == 404 else str(exc)))
        except ClientError as exc:
            self.post_message(self.RulesFetched(None, str(exc)))

    # Named, not ``@on``: a plain mixin's decorated handlers are not collected by Textual.
    def on_rules_feed_rules_fetched(self, message: RulesFetched) -> None:
        self._rules_busy = False
        app = self._sd
        app.model.set_rules(message.rules, app.now(), message.error)
        app.refresh_data()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "rules" and event.state in (
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self._rules_busy = False
