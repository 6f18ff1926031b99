"""``L`` after the login expired: the admin password, asked in a modal, never shown or kept."""

from __future__ import annotations

from pydantic import SecretStr
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from statusdash.client import ApiError, ClientError
from statusdash.safetext import one_line
from statusdash.tui.messages import LoginAnswered
from statusdash.tui.source import DataSource


class LoginScreen(ModalScreen[bool]):
    """A password input (drawn as dots); dismissed with True once the server took it.

    The password goes to a thread worker wrapped in a ``SecretStr``, so a worker's description
    or a log line shows asterisks; the input is cleared as soon as it is submitted.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, source: DataSource) -> None:
        super().__init__()
        self._source = source

    def compose(self) -> ComposeResult:
        with Vertical(id="login-box", classes="panel") as box:
            box.border_title = "Log in"
            box.border_subtitle = "esc cancels"
            yield Static(Content(f"admin password for {self._source.label}"), id="login-what")
            yield Input(password=True, id="login-password", placeholder="password")
            yield Static("", id="login-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        box = self.query_one(Input)
        secret = SecretStr(box.value)
        box.value = ""
        if not secret.get_secret_value():
            return
        box.disabled = True
        self.query_one("#login-error", Static).update(Content.styled("logging in…", "$text-muted"))
        self._log_in(secret)

    @work(thread=True, exit_on_error=False, group="login", exclusive=True, description="log in")
    def _log_in(self, secret: SecretStr) -> None:
        try:
            self._source.log_in(secret.get_secret_value())
        except ApiError as exc:
            wrong = exc.status in (400, 401, 403)
            self.post_message(LoginAnswered("wrong password" if wrong else str(exc)))
        except ClientError as exc:
            self.post_message(LoginAnswered(str(exc)))
        else:
            self.post_message(LoginAnswered())

    @on(LoginAnswered)
    def _answered(self, message: LoginAnswered) -> None:
        if not message.error:
            self.dismiss(True)
            return
        box = self.query_one(Input)
        box.disabled = False
        box.focus()
        error = Content.styled(one_line(message.error), "$error")
        self.query_one("#login-error", Static).update(error)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.post_message(LoginAnswered(type(event.worker.error).__name__))

    def action_cancel(self) -> None:
        self.dismiss(False)
