"""`kubelite agent` runs the service dataplane by default; its flags reach run_agent."""

from __future__ import annotations

import argparse

from cli import agent_cmd


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    agent_cmd.register(parser.add_subparsers())
    return parser.parse_args(["agent", "--server", "http://x", "--node-name", "n1", *argv])


def test_proxy_is_on_by_default_with_the_design_cidrs() -> None:
    assert agent_cmd._proxy_settings(parse()) == {"proxy": True, "cluster_cidr": "10.244.0.0/16",
                                                  "service_cidr": "10.43.0.0/16"}


def test_proxy_flags() -> None:
    args = parse("--no-proxy", "--cluster-cidr", "10.42.0.0/16", "--service-cluster-ip-range", "10.96.0.0/12")
    assert agent_cmd._proxy_settings(args) == {"proxy": False, "cluster_cidr": "10.42.0.0/16",
                                               "service_cidr": "10.96.0.0/12"}
