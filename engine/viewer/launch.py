"""Starting a viewer, shared by `engine run --view` (the view stage) and `engine view`.

aiohttp is imported here, when a viewer starts, so that users who never view never need it.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

from engine.errors import ConfigError
from engine.viewer.feed import ViewerOptions

AIOHTTP_PIN = "aiohttp>=3.9,<4"


def serve_viewer(options: ViewerOptions, should_stop: Callable[[], bool], say: Callable[[str], None]) -> None:
    """Serve until `should_stop()`; `say` gets the page's address and any warning, one line each."""
    try:
        from engine.viewer import server
    except ModuleNotFoundError as exc:
        if exc.name not in ("aiohttp", "multidict", "yarl"):
            raise
        raise ConfigError(f"the web viewer needs aiohttp: pip install '{AIOHTTP_PIN}' (or run without --view)") from None
    if options.curve_keys:
        from engine.framework.security import load_keys

        load_keys(options.curve_keys)  # a bad key folder is one line now, not a silent page without data
    warning = server.exposure_warning(options.host, options.port)
    if warning:
        say(f"warning: {warning}")
    asyncio.run(server.serve(options, should_stop, on_ready=lambda url: say(f"viewer: open {url}")))
