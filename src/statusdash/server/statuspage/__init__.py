"""The public status page (``STATUS_PAGE=true``): config, 90-day bars, live state, rendering.

docs/status-page.md says what it shows, what it never shows, and how a day is computed.
"""
