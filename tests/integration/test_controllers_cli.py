"""`kubelite controller-manager` as a process: it reconciles, and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from api.apps import ReplicaSet
from api.client import Client
from tests.integration.controllers_support import deployment, eventually

pytestmark = pytest.mark.slow

# The verb's own parser, as cli/main.py builds it; no other command module is needed.
SCRIPT = """\
import argparse, asyncio, sys
from cli import controller_cmd
parser = argparse.ArgumentParser(prog="kubelite")
controller_cmd.register(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
sys.exit(asyncio.run(args.func(args)))
"""


async def test_controller_manager_process(client: Client, apiserver: object) -> None:
    url = getattr(apiserver, "url")  # noqa: B009 - the fixture's type is the lead's
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SCRIPT, "controller-manager", "--server", url, "--node-monitor-grace-period", "2s",
        "--pod-eviction-timeout", "2s", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await client.create(deployment("cli", 2))

        async def has_rs() -> bool:
            items = (await client.list(ReplicaSet, namespace="default")).items
            return any(rs.status is not None and rs.status.replicas == 2 for rs in items)

        await eventually(has_rs, timeout=20, what="the process created a ReplicaSet and its pods")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()[-2000:]
