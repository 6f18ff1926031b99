"""statusdash: terminal-first monitoring for a fleet of Linux hosts."""

__version__ = "0.1.0"
