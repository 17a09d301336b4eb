"""`kubelite exec` takes its flags before or after POD, as kubectl does; `--` starts the command."""

from __future__ import annotations

import pytest

from cli.main import build_parser
from cli.pods_cmd import parse_exec


def parsed(*argv: str):  # type: ignore[no-untyped-def]
    return parse_exec(build_parser().parse_args(["exec", *argv]))


@pytest.mark.parametrize("argv", [
    ("-it", "-c", "app", "-n", "dev", "web", "--", "sh", "-c", "echo $HOME"),
    ("web", "-it", "-c", "app", "-n", "dev", "--", "sh", "-c", "echo $HOME"),
    ("-i", "web", "--container", "app", "-t", "--namespace", "dev", "--", "sh", "-c", "echo $HOME"),
])
def test_flags_before_or_after_the_pod(argv: tuple[str, ...]) -> None:
    args = parsed(*argv)
    assert (args.pod, args.container, args.namespace, args.stdin, args.tty) == ("web", "app", "dev", True, True)
    assert args.argv == ["sh", "-c", "echo $HOME"]


def test_the_command_keeps_its_own_flags_and_dashes() -> None:
    args = parsed("web", "--kubeconfig", "/tmp/k", "--", "ls", "-l", "--", "-c")
    assert args.kubeconfig == "/tmp/k" and not args.stdin
    assert args.argv == ["ls", "-l", "--", "-c"]


def test_without_dashes_everything_after_the_pod_is_the_command() -> None:
    assert parsed("web", "ls", "-l").argv == ["ls", "-l"]
