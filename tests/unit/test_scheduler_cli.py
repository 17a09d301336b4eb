"""`kubelite scheduler` flags (the command module registers into any subparsers)."""

from __future__ import annotations

import argparse
import inspect

import pytest

from cli import scheduler_cmd


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kubelite")
    scheduler_cmd.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_flags_and_defaults() -> None:
    args = parse("scheduler", "--server", "http://127.0.0.1:6443")
    assert (args.server, args.leader_elect, args.scheduler_name, args.bind_concurrency) == (
        "http://127.0.0.1:6443", False, "default-scheduler", 64)
    assert inspect.iscoroutinefunction(args.func)
    args = parse("scheduler", "--server", "http://h:1", "--leader-elect", "--bind-concurrency", "8")
    assert args.leader_elect and args.bind_concurrency == 8


def test_server_is_required() -> None:
    with pytest.raises(SystemExit):
        parse("scheduler")


def test_run_scheduler_is_importable_for_kubelite_server() -> None:
    from scheduler import run_scheduler

    assert scheduler_cmd.run_scheduler is run_scheduler
    params = inspect.signature(run_scheduler).parameters
    assert params["stop"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["leader_elect"].default is False
