"""`kubelite controller-manager` flag parsing."""

from __future__ import annotations

import argparse

import pytest

from cli import controller_cmd


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    controller_cmd.register(parser.add_subparsers())
    return parser.parse_args(["controller-manager", *argv])


def test_defaults_and_durations() -> None:
    args = parse("--server", "http://127.0.0.1:6443")
    assert (args.node_monitor_grace_period, args.pod_eviction_timeout) == (40.0, 300.0)
    assert args.cluster_cidr == "10.244.0.0/16" and args.leader_elect is True
    args = parse("--server", "u", "--node-monitor-grace-period", "2s", "--pod-eviction-timeout", "1m30s",
                 "--cluster-cidr", "10.50.0.0/16", "--no-leader-elect")
    assert (args.node_monitor_grace_period, args.pod_eviction_timeout) == (2.0, 90.0)
    assert args.cluster_cidr == "10.50.0.0/16" and args.leader_elect is False


@pytest.mark.parametrize("flag,value", [("--pod-eviction-timeout", "5"), ("--cluster-cidr", "10.0.0.0/28"),
                                        ("--node-monitor-grace-period", "-1s")])
def test_bad_flags_are_refused(flag: str, value: str) -> None:
    with pytest.raises(SystemExit):
        parse("--server", "u", flag, value)
