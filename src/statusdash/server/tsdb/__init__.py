"""The storage engine for labelled series (issue 13): registry, head, chunks, tiers, queries.

See docs/history.md ("Labelled series"). ``codec.py`` (the chunk codec) is its own module.
"""
