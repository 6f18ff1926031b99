"""The statusdash TUI application: takes a data source, polls it (and follows the stream)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.worker import Worker, WorkerState, get_current_worker

from statusdash.client import ApiError, ClientError, LoginExpired
from statusdash.schema import HostSummary, utcnow
from statusdash.tui import sparkseed
from statusdash.tui.commands import HostCommands, ScreenCommands
from statusdash.tui.fmt import Thresholds
from statusdash.tui.messages import (
    FetchFailed,
    FleetFetched,
    LoginEnded,
    LoginRenewed,
    StoredLoginFound,
    StreamBatch,
    StreamClosed,
    StreamOpened,
)
from statusdash.tui.model import FleetModel, SortKey
from statusdash.tui.screens.base import DataScreen
from statusdash.tui.screens.fleet import FleetScreen
from statusdash.tui.screens.help import HelpScreen, help_rows
from statusdash.tui.screens.host import HostScreen
from statusdash.tui.screens.lists import AlertsScreen, ServicesScreen
from statusdash.tui.screens.login import LoginScreen
from statusdash.tui.source import DataSource, StreamEvent, StreamUnavailable, parse_host
from statusdash.tui.sparkseed import SparkSeeded
from statusdash.tui.widgets.status_bar import LOGIN_EXPIRED, LOGIN_KEY

STREAM_BATCH_S = 0.5
STREAM_RETRY_S = (2.0, 60.0)
NO_STREAM_RETRY_S = 60.0
RENEW_RETRY_S = 5.0  # a renewal that did not reach the server is tried again this soon
LOGIN_RETRY_S = 5.0  # while the login is expired, how often a poll looks for a new one
__all__ = ["LOGIN_EXPIRED", "StatusdashApp"]


class StatusdashApp(App[None]):
    """The fleet at a glance. All I/O runs in thread workers that post messages; handlers here
    own the model, so the interface never waits on the network and never exits because of it."""

    CSS_PATH = "statusdash.tcss"
    TITLE = "statusdash"
    MODES = {"fleet": FleetScreen, "alerts": AlertsScreen, "services": ServicesScreen}
    DEFAULT_MODE = "fleet"
    COMMANDS = App.COMMANDS | {HostCommands, ScreenCommands}
    BINDINGS = [
        Binding("f", "switch_mode('fleet')", "Fleet", show=False),
        Binding("a", "switch_mode('alerts')", "Alerts"),
        Binding("v", "switch_mode('services')", "Services"),
        Binding("question_mark", "help", "Help"),
        Binding(LOGIN_KEY, "login", "Log in (once the login expired)", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        source: DataSource,
        *,
        poll_interval: float = 1.0,
        live_poll_interval: float = 5.0,
        thresholds: Thresholds | None = None,
        clock: Callable[[], datetime] = utcnow,
        stream: bool = True,
    ) -> None:
        super().__init__()
        self.source = source
        self.poll_interval = poll_interval
        self.live_poll_interval = live_poll_interval
        self.now = clock
        self.use_stream = stream
        self.model = FleetModel(thresholds or Thresholds(), clock())
        self.polls = 0
        self.stream_batches = 0
        self._poll_timer: Timer | None = None
        self._stream_timer: Timer | None = None
        self._renew_timer: Timer | None = None  # one, so renewals never run as parallel chains
        self._stream_failures = 0
        self._last_draw = 0.0
        self.login_expired = False
        self.renewals = 0
        self.stream_opens = 0
        self._seed_asked: set[str] = set()  # hosts whose sparkline history was asked once
        self.sub_title = source.label

    # --- lifecycle ---------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.poll_now()
        if self.use_stream:
            self._open_stream()
        self.set_interval(1.0, self._tick)
        self._schedule_renewal(self.source.renew_in())

    def _tick(self) -> None:
        """Keep ages growing on screen when no data arrives (server away, or all quiet)."""
        if time.monotonic() - self._last_draw >= 0.9:
            self.refresh_data()
        if self.login_expired and not self._modal_open():
            self._watch_login()

    def refresh_data(self) -> None:
        """Tell the active screen to redraw from the model."""
        self._last_draw = time.monotonic()
        stack = self.screen_stack
        screen = stack[-1] if stack else None
        if isinstance(screen, DataScreen):
            screen.redraw()

    # --- polling -----------------------------------------------------------------------------
    def poll_now(self) -> None:
        """Poll at once (unless a modal is open); the answer's handler schedules the next."""
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        if self._modal_open() and self.model.link.last_ok is not None:
            self._schedule_poll(self.poll_interval)
            return
        self._fetch_fleet(self.source)

    def _modal_open(self) -> bool:
        stack = self.screen_stack
        return bool(stack) and isinstance(stack[-1], ModalScreen)

    def _schedule_poll(self, delay: float) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self._poll_timer = self.set_timer(delay, self.poll_now)

    @work(thread=True, exit_on_error=False, group="poll", exclusive=True)
    def _fetch_fleet(self, source: DataSource) -> None:
        try:
            hosts = source.hosts()
        except ApiError as exc:
            self.post_message(FetchFailed(str(exc), auth=exc.status in (401, 403)))
            return
        except ClientError as exc:
            self.post_message(FetchFailed(str(exc)))
            return
        # The rows go on screen at once; sentiment, alerts and services follow.
        self.post_message(FleetFetched(hosts, final=False))
        msg = FleetFetched(None)
        try:
            msg.sentiment = source.sentiment()
        except ClientError as exc:
            msg.problems.append(f"sentiment: {exc}")
        try:
            msg.alerts = source.alerts("active")
        except ClientError as exc:
            msg.problems.append(f"alerts: {exc}")
        try:
            msg.services = source.services()
        except ClientError as exc:
            msg.problems.append(f"services: {exc}")
        self.post_message(msg)

    @on(FleetFetched)
    def _fleet_fetched(self, message: FleetFetched) -> None:
        now = self.now()
        model = self.model
        model.link.ok(now)
        if self.login_expired:
            self._login_back()
        if message.hosts is not None:
            model.apply_hosts(message.hosts, now)
            self._seed_sparklines()
        if not message.final:
            self.refresh_data()
            return
        self.polls += 1
        if message.sentiment is not None:
            model.set_sentiment(message.sentiment)
        if message.alerts is not None:
            model.set_alerts(message.alerts)
        if message.services is not None:
            model.set_services(message.services)
        model.problems = message.problems
        self.refresh_data()
        live = model.link.streaming
        self._schedule_poll(self.live_poll_interval if live else self.poll_interval)

    def _seed_sparklines(self) -> None:
        """Short sparklines (a server that just restarted) are filled from history, once."""
        hosts = sparkseed.wanting(self.model, self._seed_asked)
        if hosts:
            self._seed_asked.update(h for h, _ in hosts)
            self._fetch_seeds(hosts)

    @work(thread=True, exit_on_error=False, group="seed", description="sparkline history")
    def _fetch_seeds(self, hosts: list[tuple[str, float]]) -> None:
        worker = get_current_worker()
        sparkseed.fetch(self.source, hosts, self.post_message, lambda: worker.is_cancelled)

    @on(SparkSeeded)
    def _spark_seeded(self, message: SparkSeeded) -> None:
        if sparkseed.apply(self.model, message):
            self.refresh_data()

    @on(FetchFailed)
    def _fetch_failed(self, message: FetchFailed) -> None:
        self.polls += 1
        if message.auth:
            self._login_ended(message.error)
        elif self.login_expired:  # unreachable too; the login is still what must be mended
            self.model.link.failed(f"{LOGIN_EXPIRED} ({message.error})")
        else:
            self.model.link.failed(message.error)
        self.refresh_data()
        delay = self.model.link.backoff(self.poll_interval)
        self._schedule_poll(min(delay, LOGIN_RETRY_S) if self.login_expired else delay)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that died of something unexpected counts as a failed fetch, never an exit."""
        if event.state is not WorkerState.ERROR:
            return
        error = f"{type(event.worker.error).__name__}: {event.worker.error}"
        if event.worker.group == "poll":
            self.post_message(FetchFailed(error))
        elif event.worker.group == "stream":
            self.post_message(StreamClosed(error))
        elif event.worker.group == "renew":
            self.post_message(LoginRenewed(RENEW_RETRY_S, error))

    # --- the login: renewed before it ends; when it ends anyway, said so and picked up again --
    def _schedule_renewal(self, delay: float | None) -> None:
        if self._renew_timer is not None:
            self._renew_timer.stop()
            self._renew_timer = None
        if delay is not None and self.is_running:
            self._renew_timer = self.set_timer(delay, self._renew_token)

    @work(thread=True, exit_on_error=False, group="renew", exclusive=True)
    def _renew_token(self) -> None:
        try:
            self.source.renew()
        except LoginExpired as exc:
            self.post_message(LoginEnded(str(exc)))
            return
        except ClientError as exc:
            self.post_message(LoginRenewed(RENEW_RETRY_S, str(exc)))
            return
        self.post_message(LoginRenewed(self.source.renew_in()))

    @on(LoginRenewed)
    def _login_renewed(self, message: LoginRenewed) -> None:
        if message.problem:
            self.model.problems = [*self.model.problems, f"login renewal: {message.problem}"]
        else:
            self.renewals += 1
        if not self.login_expired:
            self._schedule_renewal(message.next_in)

    @on(LoginEnded)
    def _login_ended_message(self, message: LoginEnded) -> None:
        self._login_ended(message.reason)
        self.refresh_data()
        self.poll_now()  # the poll looks for a new stored login from now on

    def _login_ended(self, reason: str) -> None:
        """The server refused the login: say so, show nothing as live, wait for a new one."""
        self.model.link.failed(f"{LOGIN_EXPIRED} ({reason})")
        self.model.link.streaming = False
        if not self.login_expired:
            self.login_expired = True
            self.notify(
                f"{LOGIN_EXPIRED}, or press {LOGIN_KEY} to log in here",
                title="statusdash",
                severity="error",
                timeout=30,
                markup=False,
            )

    @work(thread=True, exit_on_error=False, group="login-watch", exclusive=True)
    def _watch_login(self) -> None:
        """Look at the stored login (a file read, no request): a new one is tried at once."""
        if self.source.adopt_stored_login():
            self.post_message(StoredLoginFound())

    @on(StoredLoginFound)
    def _stored_login_found(self) -> None:
        if self.login_expired:
            self.poll_now()

    def action_login(self) -> None:
        """The password prompt; a login the server takes brings the data back at once."""
        if not self.login_expired:
            self.notify("the login is valid; L logs in again once it expires", timeout=5)
            return
        if isinstance(self.screen, LoginScreen):
            return

        def done(ok: bool | None) -> None:
            if ok:
                self.poll_now()

        self.push_screen(LoginScreen(self.source), done)

    def _login_back(self) -> None:
        """A poll went through again (a new login was picked up): renew it, stream again."""
        self.login_expired = False
        self.notify("logged in again", title="statusdash", timeout=5)
        self._schedule_renewal(self.source.renew_in())
        if self.use_stream:
            if self._stream_timer is not None:
                self._stream_timer.stop()
            self._open_stream()

    # --- the live stream -----------------------------------------------------------------------
    def _open_stream(self) -> None:
        self._stream_timer = None
        self._follow_stream(self.source)

    @work(thread=True, exit_on_error=False, group="stream", exclusive=True)
    def _follow_stream(self, source: DataSource) -> None:
        worker = get_current_worker()
        try:
            stream = source.open_stream()
        except StreamUnavailable as exc:
            self.post_message(StreamClosed(str(exc), available=False))
            return
        except ClientError as exc:
            self.post_message(StreamClosed(str(exc)))
            return
        if stream is None:
            self.post_message(StreamClosed("the source has no stream", available=False))
            return
        self.post_message(StreamOpened())
        hosts: dict[str, HostSummary] = {}
        others: list[StreamEvent] = []
        deadline = time.monotonic() + STREAM_BATCH_S
        try:
            while not worker.is_cancelled:
                event = stream.recv(timeout=0.25)
                if event is not None:
                    if event.type == "host.updated":
                        h = parse_host(event.data)
                        if h is not None:
                            hosts[h.host] = h
                    elif event.type != "hello":
                        others.append(event)  # alerts, services, resync: a poll refetches
                if time.monotonic() >= deadline:
                    if hosts or others:
                        self.post_message(StreamBatch([*others], list(hosts.values())))
                        hosts, others = {}, []
                    deadline = time.monotonic() + STREAM_BATCH_S
        except ClientError as exc:
            if hosts or others:
                self.post_message(StreamBatch(others, list(hosts.values())))
            self.post_message(StreamClosed(str(exc)))
        finally:
            stream.close()

    @on(StreamOpened)
    def _stream_opened(self) -> None:
        self.stream_opens += 1
        self._stream_failures = 0
        self.model.link.streaming = True
        self.refresh_data()

    @on(StreamClosed)
    def _stream_closed(self, message: StreamClosed) -> None:
        self.model.link.streaming = False
        self.model.stream_note = message.reason
        if message.available:
            self._stream_failures += 1
            low, high = STREAM_RETRY_S
            delay = min(high, low * 2 ** (self._stream_failures - 1))
            self.poll_now()
        else:
            delay = NO_STREAM_RETRY_S
        if self.use_stream and self.is_running:
            self._stream_timer = self.set_timer(delay, self._open_stream)
        self.refresh_data()

    @on(StreamBatch)
    def _stream_batch(self, message: StreamBatch) -> None:
        self.stream_batches += 1
        now = self.now()
        for h in message.hosts:
            self.model.apply_update(h, now)
        if message.events:
            # Alerts and services change rarely; a poll brings them with the sentiment.
            self.set_timer(0.1, self.poll_now)
        self.refresh_data()

    # --- navigation ----------------------------------------------------------------------------
    def open_host(self, host: str) -> None:
        """Push the host screen for ``host`` (from the table, an alert, or the palette)."""
        screen = self.screen
        if isinstance(screen, HostScreen) and screen.host == host:
            return
        if isinstance(screen, FleetScreen):
            screen.select_host(host)
        self.push_screen(HostScreen(host))

    def sort_by(self, key: SortKey) -> None:
        """Sort the fleet by ``key`` and show it."""
        self.model.set_sort(key)
        self.switch_mode("fleet")
        self.refresh_data()

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, HelpScreen):
            return
        bindings = screen.active_bindings
        # Each key as itself: a footer's grouped display ("1-5") would repeat on every row.
        display = {
            k: self.get_key_display(replace(ab.binding, key_display=None))
            for k, ab in bindings.items()
        }
        title = {FleetScreen: "fleet", AlertsScreen: "alerts", ServicesScreen: "services"}.get(
            type(screen), "host" if isinstance(screen, HostScreen) else "screen"
        )
        self.push_screen(HelpScreen(title, help_rows(bindings, display)))
