"""Pod verbs that need a kubelet: `logs`, `exec`, `run`, `top`.

`logs` and `exec` go through the API server (pods/{name}/log, pods/{name}/exec), which
proxies them to the pod's kubelet, so they work from anywhere that reaches the API server.
`top` asks each node's kubelet for cgroup usage (`/stats/summary`), through the API server's
node proxy (nodes/{name}/proxy/stats/summary).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from typing import Any

import aiohttp

from api.core import Container, ContainerPort, EnvVar, HostPathVolumeSource, Node, Pod, PodSpec, Volume, VolumeMount
from api.errors import ApiError
from api.meta import ObjectMeta
from cli.config import add_connection_flags, connect

__all__ = ["build_pod", "register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("logs", help="print the logs of a container in a pod")
    p.add_argument("pod")
    p.add_argument("-c", "--container")
    p.add_argument("-f", "--follow", action="store_true", help="stream new lines as they are written")
    p.add_argument("-p", "--previous", action="store_true", help="the previous instance of the container")
    p.add_argument("--tail", type=int, default=-1, metavar="N", help="only the last N lines")
    p.add_argument("--since", type=int, metavar="SECONDS", help="only lines newer than this many seconds")
    p.add_argument("--timestamps", action="store_true", help="prefix each line with its time")
    p.add_argument("-n", "--namespace")
    add_connection_flags(p)
    p.set_defaults(func=_logs)

    p = subparsers.add_parser("exec", help="run a command in a container of a pod",
                              usage="kubelite exec [-it] [-c C] POD [flags] -- COMMAND [ARGS...]")
    _exec_flags(p)
    p.add_argument("pod")
    # Flags may follow POD (as with kubectl): what comes before `--` is re-parsed in _exec.
    p.add_argument("argv", nargs=argparse.REMAINDER, help="[flags] -- COMMAND [ARGS...]")
    p.set_defaults(func=_exec)

    p = subparsers.add_parser("run", help="run an image as a pod (like docker run)",
                              usage="kubelite run NAME --image=IMG [-p HOST:CTR] [-e K=V] [-v HOST:CTR] "
                                    "[--restart=Always|OnFailure|Never] [-- CMD...]")
    _run_flags(p)
    # Flags may follow NAME (as with docker and kubectl): everything from NAME on is re-parsed in _run.
    p.add_argument("words", nargs=argparse.REMAINDER, help="NAME [flags] [-- CMD [ARGS...]]")
    p.set_defaults(func=_run)

    p = subparsers.add_parser("top", help="CPU and memory of nodes or pods (from the kubelets' cgroups)")
    p.add_argument("what", choices=("nodes", "node", "pods", "pod"))
    p.add_argument("-n", "--namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    add_connection_flags(p)
    p.set_defaults(func=_top)


def _exec_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--container")
    p.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the command")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument("-n", "--namespace")
    add_connection_flags(p)


def parse_exec(args: argparse.Namespace) -> argparse.Namespace:
    """Flags given after POD (before `--`) join those given before it; `argv` becomes the command."""
    words = list(args.argv)
    flags, cmd = (words[:words.index("--")], words[words.index("--") + 1:]) if "--" in words else ([], words)
    inner = argparse.ArgumentParser(prog="kubelite exec")
    _exec_flags(inner)
    later = inner.parse_args(flags)
    merged = argparse.Namespace(**vars(args))
    for key, value in vars(later).items():
        if value != inner.get_default(key):
            setattr(merged, key, value)
    merged.argv = cmd
    return merged


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image")
    p.add_argument("-p", "--publish", action="append", default=[], metavar="HOST:CTR",
                   help="publish a container port on the node (hostPort)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="HOST:CTR", help="bind a host directory")
    p.add_argument("--restart", default="Always", choices=("Always", "OnFailure", "Never"))
    p.add_argument("--image-pull-policy", choices=("Always", "IfNotPresent", "Never"))
    p.add_argument("-n", "--namespace")
    add_connection_flags(p)


def parse_run(args: argparse.Namespace) -> argparse.Namespace:
    """Merge the flags given before NAME with those after it; `name` and `argv` (the CMD)."""
    inner = argparse.ArgumentParser(prog="kubelite run")
    _run_flags(inner)
    inner.add_argument("name")
    inner.add_argument("argv", nargs="*")
    words = list(args.words)
    cmd: list[str] = []
    if "--" in words:
        cmd = words[words.index("--") + 1:]
        words = words[: words.index("--")]
    later = inner.parse_args(words)
    merged = argparse.Namespace(**vars(args))
    for key, value in vars(later).items():
        if key in ("publish", "env", "volume"):
            setattr(merged, key, list(getattr(args, key) or []) + list(value or []))
        elif value != inner.get_default(key) or not hasattr(merged, key):
            setattr(merged, key, value)
    merged.argv = list(later.argv) + cmd
    return merged


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


async def _logs(args: argparse.Namespace) -> int:
    async with connect(args) as conn:
        ns = conn.namespace(args.namespace)
        params: dict[str, str | int | bool | None] = {
            "container": args.container, "follow": args.follow or None, "previous": args.previous or None,
            "tailLines": args.tail if args.tail >= 0 else None, "sinceSeconds": args.since,
            "timestamps": args.timestamps or None}
        try:
            async with conn.api.stream("GET", f"/api/v1/namespaces/{ns}/pods/{args.pod}/log", params=params) as r:
                async for chunk in r.content.iter_any():
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()
        except ApiError as e:
            return _fail(str(e))
        except ConnectionError as e:
            return _fail(str(e))
    return 0


async def _exec(args: argparse.Namespace) -> int:
    args = parse_exec(args)
    argv = args.argv
    if not argv:
        return _fail("you must specify at least one command for the container (kubelite exec POD -- CMD)", 2)
    async with connect(args) as conn:
        ns = conn.namespace(args.namespace)
        server = conn.target.server
        token = conn.target.token
        ssl = conn.target.ssl
    params: list[tuple[str, str]] = [("command", a) for a in argv]
    params += [("stdout", "true"), ("stderr", "false" if args.tty else "true")]
    if args.stdin:
        params.append(("stdin", "true"))
    if args.tty:
        params.append(("tty", "true"))
    if args.container:
        params.append(("container", args.container))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{server}/api/v1/namespaces/{ns}/pods/{args.pod}/exec"
    async with aiohttp.ClientSession(headers=headers) as session:
        try:
            ws = await session.ws_connect(url, params=params, protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"),
                                          ssl=ssl if ssl is not None else True)
        except aiohttp.WSServerHandshakeError as e:
            return _fail(f"exec refused by the API server: HTTP {e.status} {e.message}")
        except aiohttp.ClientError as e:
            return _fail(f"cannot reach the API server at {server}: {e}")
        async with ws:
            return await _session(ws, stdin=args.stdin, tty=args.tty)


async def _session(ws: aiohttp.ClientWebSocketResponse, *, stdin: bool, tty: bool) -> int:
    loop = asyncio.get_running_loop()
    saved = None
    if tty and os.isatty(0):
        import termios
        import tty as ttymod

        saved = termios.tcgetattr(0)
        ttymod.setraw(0)

    outgoing: asyncio.Queue[bytes] = asyncio.Queue()

    async def sender() -> None:
        while True:
            await ws.send_bytes(await outgoing.get())

    def resize() -> None:
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(0)
            outgoing.put_nowait(b"\x04" + json.dumps({"Width": size.columns, "Height": size.lines}).encode())

    reader_added = False
    send_task = asyncio.create_task(sender(), name="exec-send")
    try:
        if tty:
            resize()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGWINCH, resize)
        if stdin:
            def on_input() -> None:
                data = os.read(0, 65536)
                if data:
                    outgoing.put_nowait(b"\x00" + data)
                else:
                    loop.remove_reader(0)
                    outgoing.put_nowait(b"\xff\x00")

            loop.add_reader(0, on_input)
            reader_added = True
        code = 0
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == 1:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            elif channel == 2:
                sys.stderr.buffer.write(data)
                sys.stderr.buffer.flush()
            elif channel == 3:
                status = json.loads(data)
                if status.get("status") != "Success":
                    causes = (status.get("details") or {}).get("causes") or []
                    exit_codes = [c.get("message") for c in causes if c.get("reason") == "ExitCode"]
                    if exit_codes and str(exit_codes[0]).isdigit():
                        code = int(exit_codes[0])
                    else:
                        print(f"error: {status.get('message')}", file=sys.stderr)
                        code = 1
        return code
    finally:
        send_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await send_task
        if reader_added:
            loop.remove_reader(0)
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def build_pod(name: str, image: str, *, namespace: str, publish: list[str], env: list[str], volumes: list[str],
              restart: str, argv: list[str], pull_policy: str | None = None) -> Pod:
    """The pod `kubelite run` creates: one container named after the pod, docker-run style flags."""
    ports = []
    for spec in publish:
        host, _, ctr = spec.rpartition(":")
        ctr, _, proto = ctr.partition("/")
        ports.append(ContainerPort(container_port=int(ctr), host_port=int(host) if host else None,
                                   protocol=(proto or "tcp").upper()))
    envs = [EnvVar(name=k, value=v) for k, _, v in (e.partition("=") for e in env)]
    vols, mounts = [], []
    for i, spec in enumerate(volumes):
        host, _, rest = spec.partition(":")
        ctr, _, mode = rest.partition(":")
        vols.append(Volume(name=f"vol-{i}", host_path=HostPathVolumeSource(path=host, type="DirectoryOrCreate")))
        mounts.append(VolumeMount(name=f"vol-{i}", mount_path=ctr, read_only=mode == "ro" or None))
    c = Container(name=name, image=image, args=argv or None, ports=ports or None, env=envs or None,
                  volume_mounts=mounts or None, image_pull_policy=pull_policy)
    return Pod(metadata=ObjectMeta(name=name, namespace=namespace, labels={"run": name}),
               spec=PodSpec(containers=[c], volumes=vols or None, restart_policy=restart))


async def _run(args: argparse.Namespace) -> int:
    args = parse_run(args)
    if not args.image:
        return _fail("--image is required (kubelite run NAME --image=IMG)", 2)
    async with connect(args) as conn:
        ns = conn.namespace(args.namespace)
        try:
            pod = build_pod(args.name, args.image, namespace=ns, publish=args.publish, env=args.env,
                            volumes=args.volume, restart=args.restart, argv=args.argv,
                            pull_policy=args.image_pull_policy)
        except ValueError as e:
            return _fail(f"invalid flag: {e}", 2)
        try:
            await conn.api.create(pod)
        except (ApiError, ConnectionError) as e:
            return _fail(str(e))
    print(f"pod/{args.name} created")
    return 0


async def _top(args: argparse.Namespace) -> int:
    summaries = []
    async with connect(args) as conn:
        try:
            nodes = (await conn.api.list(Node)).items
        except (ApiError, ConnectionError) as e:
            return _fail(str(e))
        for node in nodes:  # through the API server's node proxy, as `kubectl top` goes through it
            name = node.metadata.name or ""
            try:
                summaries.append((node, await conn.api.request("GET", f"/api/v1/nodes/{name}/proxy/stats/summary")))
            except (ApiError, ConnectionError) as e:
                print(f"warning: no stats from node {name}: {e}", file=sys.stderr)
    if args.what.startswith("node"):
        rows: list[tuple[str, ...]] = [("NAME", "CPU(cores)", "MEMORY(bytes)", "PODS")]
        for node, s in summaries:
            rows.append((node.metadata.name or "", f"{s['node']['cpuMillis']}m",
                         f"{s['node']['memoryBytes'] // (1 << 20)}Mi", str(len(s["pods"]))))
    else:
        ns = None if args.all_namespaces else (args.namespace or "default")
        rows = [("NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)")] if ns is None else \
            [("NAME", "CPU(cores)", "MEMORY(bytes)")]
        for _, s in summaries:
            for p in s["pods"]:
                if ns is not None and p["namespace"] != ns:
                    continue
                row: tuple[str, ...] = (p["name"], f"{p['cpuMillis']}m", f"{p['memoryBytes'] // (1 << 20)}Mi")
                rows.append((p["namespace"], *row) if ns is None else row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return 0
