"""`kubelite run` builds the pod docker users expect; the agent and pod verbs parse."""

from __future__ import annotations

import argparse

from cli import agent_cmd, pods_cmd
from cli.pods_cmd import build_pod


def test_run_builds_a_docker_like_pod() -> None:
    pod = build_pod("web", "my-app", namespace="default", publish=["4000:8080", "53/udp"], env=["A=1", "B=x=y"],
                    volumes=["/srv/data:/data:ro"], restart="Never", argv=["serve", "--port", "8080"])
    c = pod.spec.containers[0]
    assert c.name == "web" and c.image == "my-app" and c.args == ["serve", "--port", "8080"] and c.command is None
    assert [(p.host_port, p.container_port, p.protocol) for p in c.ports or []] == [(4000, 8080, "TCP"),
                                                                                   (None, 53, "UDP")]
    assert [(e.name, e.value) for e in c.env or []] == [("A", "1"), ("B", "x=y")]
    assert pod.spec.volumes and pod.spec.volumes[0].host_path and pod.spec.volumes[0].host_path.path == "/srv/data"
    assert c.volume_mounts and c.volume_mounts[0].mount_path == "/data" and c.volume_mounts[0].read_only
    assert pod.spec.restart_policy == "Never" and pod.metadata.labels == {"run": "web"}


def test_verbs_parse() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    agent_cmd.register(sub)
    pods_cmd.register(sub)
    args = parser.parse_args(["agent", "--server", "http://x", "--node-name", "n1", "--port", "10251"])
    assert args.node_name == "n1" and args.port == 10251 and args.root_dir == "/var/lib/kubelite"
    args = parser.parse_args(["exec", "-it", "web", "--", "sh", "-c", "echo hi"])
    assert args.stdin and args.tty and pods_cmd.parse_exec(args).argv == ["sh", "-c", "echo hi"]
    args = parser.parse_args(["logs", "-f", "--tail", "5", "-c", "main", "web"])
    assert args.follow and args.tail == 5 and args.container == "main"
    args = pods_cmd.parse_run(parser.parse_args(["run", "-e", "A=1", "web", "--image=busybox", "-p", "4000:8080",
                                                 "--", "httpd", "-f"]))
    assert args.name == "web" and args.image == "busybox" and args.env == ["A=1"]
    assert args.publish == ["4000:8080"] and args.argv == ["httpd", "-f"]
