"""The lean agent daemon: ``statusdash agent run`` resolves its settings and execs into this.

The long-lived process then carries neither Typer nor pydantic, and httpx is kept from loading
its command-line extras (click, rich, pygments): ~15 MB of resident memory saved, for months.
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # httpx then skips its CLI

from statusdash.agent.runner import main  # noqa: E402

raise SystemExit(main())
