"""What every long-running `kubelite` command (server, apiserver, scheduler, controller-manager,
agent) sets up first: logging to stderr, and a `stop` event that SIGINT and SIGTERM set."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def stop_on_signals(stop: asyncio.Event | None = None) -> asyncio.Event:
    """`stop` (a new event by default), set by SIGINT or SIGTERM; call from the running loop."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
