"""What every demo shares: its own namespace, narration, pauses, the live view and the checks.

    async with Stage(conn, demo="scaling", yes=args.yes) as stage:
        await stage.step("Create a Deployment with 3 replicas.")      # narrate, then pause
        await stage.apply("scaling.yaml")                              # as `kubelite apply -f`
        await stage.wait_for("3 pods Ready", lambda: ..., timeout=90)  # live table meanwhile
        stage.check("3 pods are Ready", ...)                           # ✓ or ✗, remembered
    return stage.exit_code                                             # 0 only if every check held

The stage keeps two informers (the demo namespace's pods, and the nodes), so the live
view and every condition a demo waits for read the cluster as the watch reports it, not
by polling. Each demo runs in its own namespace `demo-NAME`, created at the start
(deleting what an interrupted run left) and deleted at the end, with everything in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.markup import escape

from api.core import Namespace, Node, Pod
from api.errors import NotFound
from api.informer import Informer
from api.meta import ObjectMeta
from cli.apply import apply_one
from cli.config import Connection
from cli.demos.view import live_view, node_change, pod_change, terminating
from cli.manifests import load

if TYPE_CHECKING:
    from cli.demos.local import LocalCluster

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "demos"


class CannotRun(Exception):
    """This cluster cannot show the demo (too few nodes, not a local cluster): exit code 2."""


class Stage:
    def __init__(self, conn: Connection, *, demo: str, yes: bool, data_dir: Path,
                 console: Console | None = None) -> None:
        self.conn = conn
        self.data_dir = data_dir
        self.namespace = f"demo-{demo}"
        self.yes = yes
        # Written to a log rather than a screen, narration stays one line per sentence group.
        self.console = console or Console(highlight=False, soft_wrap=not sys.stdout.isatty())
        self.checks: list[tuple[str, bool]] = []
        self.pod_informer = Informer(conn.api, Pod, namespace=self.namespace)
        self.node_informer = Informer(conn.api, Node)
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._steps = 0
        self._start = time.monotonic()

    # ------------------------------------------------------------ lifetime

    async def __aenter__(self) -> Stage:
        for informer in (self.pod_informer, self.node_informer):
            informer.add_handler(on_add=self._poke, on_update=lambda old, new: self._poke(new),
                                 on_delete=self._poke)
            self._tasks.append(asyncio.create_task(informer.run()))
        await self.pod_informer.wait_synced(timeout=30)
        await self.node_informer.wait_synced(timeout=30)
        # After the sync, so the log starts with this demo's changes, not the cluster's state.
        self.pod_informer.add_handler(on_add=lambda p: self._log(pod_change(None, p)),
                                      on_update=lambda o, n: self._log(pod_change(o, n)),
                                      on_delete=lambda p: self._log(pod_change(p, None)))
        self.node_informer.add_handler(on_update=lambda o, n: self._log(node_change(o, n)))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _poke(self, _obj: object) -> None:
        self._changed.set()

    def _log(self, line: str | None) -> None:
        """One line per change the watch reports, printed above the live view (and kept in
        a log when the output is not a terminal, where the live view shows only its end)."""
        if line is not None:
            self.console.print(f"   [dim]{time.monotonic() - self._start:6.1f}s[/]  {escape(line)}")

    def on_pod_change(self, fn: Callable[[], None]) -> None:
        """Call `fn` after every pod event, once the cache has it: for demos that measure
        something across a change (a rollout's extremes, restart times) and must not miss
        a state that lasted only between two events."""
        self.pod_informer.add_handler(on_add=lambda _p: fn(), on_update=lambda _o, _n: fn(),
                                      on_delete=lambda _p: fn())

    # ------------------------------------------------------------ narration

    def title(self, text: str) -> None:
        self.console.rule(f"[bold]{escape(text)}")

    async def step(self, text: str, *, pause: bool = True) -> None:
        """Say what is about to happen; without --yes, wait for Enter first."""
        self._steps += 1
        self.console.print(f"\n[bold cyan]{self._steps}.[/] [bold]{escape(text)}[/]")
        if self.yes or not pause:
            return
        try:
            await asyncio.to_thread(self.console.input, "[dim]   press Enter to go on[/] ")
        except EOFError:  # stdin closed: nobody to wait for
            self.yes = True

    def say(self, text: str) -> None:
        """Explain what reacts and why (indented under the current step)."""
        self.console.print(f"   {escape(text)}")

    def did(self, text: str) -> None:
        """Report an action the demo just took, as the matching command would."""
        self.console.print(f"   [green]$[/] {escape(text)}")

    # ------------------------------------------------------------ cluster

    def pods(self, *, include_terminating: bool = False) -> list[Pod]:
        pods = self.pod_informer.list()
        return pods if include_terminating else [p for p in pods if not terminating(p)]

    def nodes(self) -> list[Node]:
        return self.node_informer.list()

    def local_cluster(self) -> LocalCluster:
        """The `kubelite up` cluster in --data-dir, if that is the cluster we talk to (else NotLocal)."""
        from cli.demos.local import find

        return find(self.data_dir, [n.metadata.name or "" for n in self.nodes()])

    async def fresh_namespace(self) -> None:
        """Create `demo-NAME`, first removing one an interrupted run left behind."""
        await self.delete_namespace(quiet=True)
        await self.conn.api.create(Namespace(metadata=ObjectMeta(name=self.namespace)))
        self.did(f"kubelite create namespace {self.namespace}")

    async def delete_namespace(self, *, quiet: bool = False, timeout: float = 90) -> None:
        """Delete the namespace and wait until the namespace controller has emptied and removed it."""
        try:
            await self.conn.api.delete(Namespace, self.namespace)
        except NotFound:
            return
        if not quiet:
            self.did(f"kubelite delete namespace {self.namespace}")
        deadline = time.monotonic() + timeout
        with self.console.status(f"waiting for namespace {self.namespace} to be emptied and removed"):
            while time.monotonic() < deadline:
                try:
                    await self.conn.api.get(Namespace, self.namespace)
                except NotFound:
                    return
                await asyncio.sleep(0.5)
        self.console.print(f"   [yellow]namespace {self.namespace} is still terminating after {timeout:.0f}s[/]")

    async def apply(self, manifest: str, *, replicas: int | None = None) -> None:
        """`kubelite apply -f manifests/demos/MANIFEST -n demo-NAME`, printing what it printed.

        `replicas` overrides the manifest's, for demos that size themselves to the cluster."""
        for m in load([str(MANIFESTS / manifest)]):
            note = ""
            if replicas is not None and "replicas" in (m.obj.get("spec") or {}):
                m.obj["spec"]["replicas"] = replicas
                note = f" (replicas set to {replicas})"
            applied = await apply_one(self.conn.api, m, self.namespace)
            self.did(f"kubelite apply -f manifests/demos/{manifest} -n {self.namespace}   # {applied.line()}{note}")

    # ------------------------------------------------------------ waiting and checking

    async def wait_for(self, goal: str, condition: Callable[[], bool], *, timeout: float,
                       expected: bool = True) -> bool:
        """Show the live view until `condition()` holds (True) or `timeout` passes (False).

        The condition is evaluated after every change the informers see, and twice a second
        for conditions that depend on time."""
        start = time.monotonic()

        def view() -> object:
            return live_view(goal, time.monotonic() - start, self.pod_informer.list(), self.nodes())

        with Live(get_renderable=view, console=self.console, refresh_per_second=4) as live:  # type: ignore[arg-type]
            while True:
                held = condition()
                if held or time.monotonic() - start > timeout:
                    live.refresh()
                    break
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.5)
        if not self.console.is_terminal:  # a log, not a screen: Live printed its last frame without a newline
            self.console.line()
        took = time.monotonic() - start
        if not expected:
            self.console.print(f"   [dim]watched for {took:.0f}s:[/] {escape(goal)}")
        elif not held:
            self.console.print(f"   [red]gave up after {took:.0f}s:[/] {escape(goal)}")
        else:
            self.console.print(f"   [dim]after {took:.1f}s:[/] {escape(goal)}")
        return held

    async def watch_for(self, seconds: float, goal: str) -> None:
        """Show the live view for a while (when nothing is expected to change)."""
        await self.wait_for(goal, lambda: False, timeout=seconds, expected=False)

    def check(self, label: str, ok: bool) -> bool:
        self.checks.append((label, ok))
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        self.console.print(f"   {mark} {escape(label)}")
        return ok

    @property
    def exit_code(self) -> int:
        return 0 if self.checks and all(ok for _, ok in self.checks) else 1

    def summary(self) -> None:
        passed = sum(ok for _, ok in self.checks)
        self.console.print()
        if self.exit_code == 0:
            self.console.print(f"[bold green]✓ demo passed:[/] {passed}/{len(self.checks)} checks held")
        else:
            self.console.print(f"[bold red]✗ demo failed:[/] {passed}/{len(self.checks)} checks held")
            for label, ok in self.checks:
                if not ok:
                    self.console.print(f"  [red]✗[/] {escape(label)}")
