"""Exponential backoff with a cap and jitter, in one place (agent push, notifications, the TUI).

Pure standard library, so the agent can import it.
"""

from __future__ import annotations

import random


def ceiling(failures: int, base_s: float, cap_s: float) -> float:
    """The longest delay after ``failures`` failures in a row: base * 2**(failures-1), capped."""
    if failures <= 0:
        return 0.0
    return float(min(cap_s, base_s * 2 ** min(failures - 1, 60)))


class Backoff:
    """Delays that double per failure up to ``cap_s``; each drawn from the upper half (jitter).

    Jitter spreads a fleet's retries after a server restart instead of synchronising them;
    ``jitter=False`` gives the ceiling itself (for tests and for UIs that show the delay).
    """

    def __init__(
        self,
        base_s: float = 1.0,
        cap_s: float = 60.0,
        *,
        jitter: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError("backoff needs 0 < base_s <= cap_s")
        self.base_s = base_s
        self.cap_s = cap_s
        self.jitter = jitter
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self, cap_s: float | None = None) -> float:
        """Count one more failure and return how long to wait before the next try; ``cap_s``
        (lower than the cap, say for a refused connection) caps this one delay."""
        self.failures += 1
        cap = self.cap_s if cap_s is None else max(self.base_s, min(cap_s, self.cap_s))
        top = ceiling(self.failures, self.base_s, cap)
        return self._rng.uniform(top / 2, top) if self.jitter else top

    def reset(self) -> None:
        """A success: the next failure starts from ``base_s`` again."""
        self.failures = 0
