"""``?``: every key of the screen below, taken from the bindings themselves."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

MOUSE_HINTS = (
    ("click header", "sort by that column (again: reverse)"),
    ("click row", "select; click it again to open"),
    ("wheel", "scroll"),
)


# Inherited keys that do nothing useful here (focus moves, copying, sideways scrolling).
SKIP_ACTIONS = {
    "app.focus_next",
    "app.focus_previous",
    "screen.copy_text",
    "cursor_left",
    "cursor_right",
    "scroll_top",
    "scroll_bottom",
    "page_left",
    "page_right",
}
# The table widgets' own words, said as the rest of the help says them.
RENAME = {
    "palette": "command palette: jump to a host",
    "Select": "Open host",
    "Cursor up": "Up",
    "Cursor down": "Down",
    "Home": "First row",
    "End": "Last row",
}


def help_rows(bindings: dict[str, ActiveBinding], key_display: dict[str, str]) -> list[Content]:
    """One line per action: the keys bound to it, then what it does; system bindings skipped."""
    by_action: dict[str, tuple[list[str], str]] = {}
    for key, active in bindings.items():
        b = active.binding
        if b.system or not b.description or b.action in SKIP_ACTIONS:
            continue
        desc = RENAME.get(b.description, b.description)
        slot = by_action.setdefault(f"{id(active.node)}:{b.action}", ([], desc))
        slot[0].append(key_display.get(key, key))
    rows = []
    width = max((len(", ".join(keys)) for keys, _ in by_action.values()), default=4)
    for keys, desc in by_action.values():
        rows.append(Content.assemble((", ".join(keys).rjust(width), "bold $accent"), "  ", desc))
    return rows


class HelpScreen(ModalScreen[None]):
    """A modal list of keys; any of ``esc``, ``q`` or ``?`` closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close help")]

    def __init__(self, title: str, rows: list[Content]) -> None:
        super().__init__()
        self._title = title
        self._rows = rows

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="panel") as box:
            box.border_title = f"Keys · {self._title}"
            box.border_subtitle = "esc closes"
            body = Content("\n").join(self._rows)
            width = max((len(k) for k, _ in MOUSE_HINTS), default=0)
            mouse = Content("\n").join(
                Content.assemble((k.rjust(width), "$text-muted"), "  ", v) for k, v in MOUSE_HINTS
            )
            yield Static(body, id="help-keys")
            yield Static(Content.assemble(("\nmouse (optional)\n", "bold"), mouse), id="help-mouse")

    def action_close(self) -> None:
        self.dismiss(None)
