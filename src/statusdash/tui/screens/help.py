"""``?``: every key of the screen below, taken from the bindings themselves."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
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
# Keys whose symbol not every terminal font has: said in words in the help.
PLAIN_KEYS = {"⌫": "backspace"}
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
        if b.tooltip and isinstance(active.node, Screen):
            desc = b.tooltip  # a screen's footer word ("Range") said in full ("Range 15m")
        slot = by_action.setdefault(f"{id(active.node)}:{b.action}", ([], desc))
        shown = key_display.get(key, key)
        slot[0].append(PLAIN_KEYS.get(shown, shown))
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
            width = max((len(k) for k, _ in MOUSE_HINTS), default=0)
            mouse = Content("\n").join(
                Content.assemble((k.rjust(width), "$text-muted"), "  ", v) for k, v in MOUSE_HINTS
            )
            rows = self._rows
            # Lines the box has at 90% of the screen: borders, the mouse lines and their title.
            room = self.app.size.height * 9 // 10 - 2 - len(MOUSE_HINTS) - 2
            if len(rows) <= room:
                yield Static(Content("\n").join(rows), id="help-keys")
            else:  # two columns rather than a scrollbar (its thumb reads as a stray glyph)
                half = (len(rows) + 1) // 2
                with Horizontal(id="help-columns"):
                    yield Static(Content("\n").join(rows[:half]), classes="help-keys")
                    yield Static(Content("\n").join(rows[half:]), classes="help-keys")
            yield Static(Content.assemble(("\nmouse (optional)\n", "bold"), mouse), id="help-mouse")

    def action_close(self) -> None:
        self.dismiss(None)
