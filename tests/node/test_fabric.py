"""Simulated hosts for multi-node clusters on one machine: namespaces on a bridge."""

from __future__ import annotations

import subprocess

import pytest

from cli.local.fabric import Fabric

pytestmark = pytest.mark.root


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def test_hosts_reach_each_other_and_leave_nothing_behind():
    fabric = Fabric("kltest")
    try:
        hosts = fabric.create(2)
        assert [h.address for h in hosts] == ["198.51.100.11", "198.51.100.12"]
        assert fabric.create(2) == hosts  # idempotent
        ping = subprocess.run(["ip", "netns", "exec", hosts[0].name, "busybox", "ping", "-c1", "-W2", hosts[1].address],
                              capture_output=True, text=True)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        routes = subprocess.run(["ip", "route", "show", "type", "unreachable"], capture_output=True, text=True).stdout
        assert "10.244.0.0/16" in routes
        # A host's default route does not exist: nothing can leave the simulated network.
        default = subprocess.run(["ip", "netns", "exec", hosts[0].name, "ip", "route", "show", "default"],
                                 capture_output=True, text=True).stdout
        assert default.strip() == ""
        fabric.cut(hosts[1])
        ping = subprocess.run(["ip", "netns", "exec", hosts[0].name, "busybox", "ping", "-c1", "-W1", hosts[1].address],
                              capture_output=True, text=True)
        assert ping.returncode != 0
        fabric.reconnect(hosts[1])
    finally:
        fabric.destroy()
    assert "kltest-" not in _links()
    assert not [n for n in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout.split()
                if n.startswith("kltest-node")]
    routes = subprocess.run(["ip", "route", "show", "type", "unreachable"], capture_output=True, text=True).stdout
    assert "10.244.0.0/16" not in routes
