"""The base of screens that show the app's data and redraw when it changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual.css.query import NoMatches
from textual.screen import Screen

if TYPE_CHECKING:
    from statusdash.tui.app import StatusdashApp


class DataScreen(Screen[Any]):
    """A screen the app tells when new data arrived; it also redraws when shown again."""

    @property
    def sd(self) -> StatusdashApp:
        """The app, typed."""
        return cast("StatusdashApp", self.app)

    _ready = False

    def data_changed(self) -> None:
        """Redraw from the app's model (subclasses); widgets exist when this is called."""

    def redraw(self) -> None:
        """``data_changed`` once the screen's widgets are mounted, never before or after."""
        if self._ready and self.is_attached:
            try:
                self.data_changed()
            except NoMatches:  # the app is closing and the widgets are already gone
                return

    def on_mount(self) -> None:
        # Handlers run for every class in the MRO: this one after the subclass's on_mount.
        self._ready = True
        self.redraw()

    def on_unmount(self) -> None:
        self._ready = False

    def on_screen_resume(self) -> None:
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()
