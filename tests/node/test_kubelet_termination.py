"""terminationMessagePath and terminationMessagePolicy: what a container writes to
/dev/termination-log (or its own path) before exiting is its `state.terminated.message`;
FallbackToLogsOnError shows the tail of the log of a failed container that wrote nothing."""

from __future__ import annotations

import pytest

from api.client import Client
from tests.node.test_kubelet_pods import Agent, agent, main_status, pod, until

__all__ = ["agent"]

pytestmark = [pytest.mark.root]


def ended(name: str):  # type: ignore[no-untyped-def]
    return lambda p: p.status is not None and p.status.phase in ("Failed", "Succeeded")


async def test_termination_messages(agent: Agent, client: Client) -> None:
    await client.create(pod("kltest-tm", "echo 'config file missing' > /dev/termination-log; exit 1",
                            restart="Never"))
    await client.create(pod("kltest-tmpath", "echo -n done-at-path > /tmp/why; exit 0", restart="Never",
                            termination_message_path="/tmp/why"))
    await client.create(pod("kltest-tmlogs", "for i in $(seq 1 100); do echo line-$i; done; exit 2",
                            restart="Never", termination_message_policy="FallbackToLogsOnError"))
    await client.create(pod("kltest-tmfile", "echo only-in-logs; exit 2", restart="Never"))
    big = "x" * 5000
    await client.create(pod("kltest-tmbig", f"echo -n {big} > /dev/termination-log; exit 1", restart="Never"))

    p = await until(client, "kltest-tm", ended("kltest-tm"))
    t = main_status(p).state.terminated  # type: ignore[attr-defined]
    assert (t.exit_code, t.reason, t.message) == (1, "Error", "config file missing\n")

    p = await until(client, "kltest-tmpath", ended("kltest-tmpath"))
    assert main_status(p).state.terminated.message == "done-at-path"  # type: ignore[attr-defined]

    p = await until(client, "kltest-tmlogs", ended("kltest-tmlogs"))
    message = main_status(p).state.terminated.message  # type: ignore[attr-defined]
    assert message.splitlines() == [f"line-{i}" for i in range(21, 101)]  # the last 80 lines

    p = await until(client, "kltest-tmfile", ended("kltest-tmfile"))
    assert main_status(p).state.terminated.message is None  # type: ignore[attr-defined]  # File: no fallback

    p = await until(client, "kltest-tmbig", ended("kltest-tmbig"))
    assert main_status(p).state.terminated.message == "x" * 4096  # type: ignore[attr-defined]
