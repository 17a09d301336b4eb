"""`scale` (through the `/scale` subresource), `cordon`, `uncordon` and `drain`.

`drain` follows kubectl: cordon first (so nothing new lands), then decide for every pod
on the node before touching any: mirror pods and finished pods are skipped, DaemonSet
pods need `--ignore-daemonsets` (their controller would put them straight back), and
pods no controller owns need `--force` (deleting them loses them for good). If any pod
is refused, nothing is evicted and the command fails naming them. Eviction here is a
delete honouring the pod's grace period; drain then waits until the pods are gone.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from api import resources
from api.errors import NotFound
from cli import targets
from cli.config import Connection
from cli.printers import kind_name

MIRROR = "kubernetes.io/config.mirror"


async def scale_cmd(args: argparse.Namespace, conn: Connection) -> int:
    if args.replicas < 0:
        raise ValueError("the --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    wanted = targets.parse(args.targets)
    ns = conn.namespace(args.namespace)
    for target in wanted.items:
        res = target.resource
        if "scale" not in res.subresources:
            raise ValueError(f"cannot scale {res.plural}: only deployments and replicasets have /scale")
        if not target.names:
            raise ValueError("resource(s) were provided, but no name was specified")
        for name in target.names:
            scale = await conn.api.request("GET", res.path(ns, name, "scale"))
            scale["spec"] = {**(scale.get("spec") or {}), "replicas": args.replicas}
            await conn.api.request("PUT", res.path(ns, name, "scale"), json=scale)
            print(f"{kind_name(res)}/{name} scaled")
    return 0


async def cordon_cmd(args: argparse.Namespace, conn: Connection) -> int:
    for node in args.nodes:
        print(await _set_unschedulable(conn, node, args.unschedulable))
    return 0


async def _set_unschedulable(conn: Connection, node: str, value: bool) -> str:
    verb = "cordoned" if value else "uncordoned"
    path = resources.NODES.path(None, node)
    current = await conn.api.request("GET", path)
    if bool((current.get("spec") or {}).get("unschedulable")) == value:
        return f"node/{node} already {verb}"
    await conn.api.request("PATCH", path, json={"spec": {"unschedulable": value or None}},
                           content_type="application/strategic-merge-patch+json")
    return f"node/{node} {verb}"


def classify(pod: dict[str, Any], *, force: bool, ignore_daemonsets: bool) -> tuple[str, str]:
    """("evict" | "skip" | "refuse", why) for one pod on a node being drained."""
    meta = pod.get("metadata") or {}
    if MIRROR in (meta.get("annotations") or {}):
        return "skip", "mirror pod"
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return "evict", "finished"
    controller = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    if controller is not None and controller.get("kind") == "DaemonSet":
        if ignore_daemonsets:
            return "skip", "DaemonSet-managed"
        return "refuse", "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
    if controller is None and not force:
        return "refuse", ("cannot delete Pods that declare no controller (use --force to override)")
    return "evict", ""


async def drain_cmd(args: argparse.Namespace, conn: Connection) -> int:
    for node in args.nodes:
        await conn.api.request("GET", resources.NODES.path(None, node))  # NotFound before anything else
        print(await _set_unschedulable(conn, node, True))
        listed = await conn.api.request("GET", resources.PODS.path(), params={"fieldSelector": f"spec.nodeName={node}"})
        plan = [(pod, *classify(pod, force=args.force, ignore_daemonsets=args.ignore_daemonsets))
                for pod in listed.get("items") or []]
        refused = [(p, why) for p, action, why in plan if action == "refuse"]
        if refused:
            reasons: dict[str, list[str]] = {}
            for pod, why in refused:
                reasons.setdefault(why, []).append(f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}")
            text = "; ".join(f"{why}: {', '.join(names)}" for why, names in reasons.items())
            print(f"error: unable to drain node {node!r} due to error: {text}\n"
                  f"There are pending nodes to be drained:\n {node}", file=sys.stderr)
            return 1
        skipped = [p for p, action, why in plan if action == "skip" and why == "DaemonSet-managed"]
        if skipped:
            names = ", ".join(f"{p['metadata'].get('namespace')}/{p['metadata']['name']}" for p in skipped)
            print(f"Warning: ignoring DaemonSet-managed Pods: {names}", file=sys.stderr)
        evict = [p for p, action, _ in plan if action == "evict"]
        for pod in evict:
            meta = pod["metadata"]
            print(f"evicting pod {meta.get('namespace')}/{meta['name']}")
            body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
            if args.grace_period is not None:
                body["gracePeriodSeconds"] = args.grace_period
            try:
                await conn.api.request("DELETE", resources.PODS.path(meta.get("namespace"), meta["name"]), json=body)
            except NotFound:
                pass
        if not await _wait_gone(conn, evict, timeout=args.timeout):
            print(f"error: timed out waiting for the pods of node {node!r} to go; they are being deleted "
                  f"(their kubelet finishes them): check with `kubelite get pods -A --field-selector "
                  f"spec.nodeName={node}`", file=sys.stderr)
            return 1
        print(f"node/{node} drained")
    return 0


async def _wait_gone(conn: Connection, pods: list[dict[str, Any]], *, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout > 0 else None
    pending = list(pods)
    while pending:
        still = []
        for pod in pending:
            meta = pod["metadata"]
            try:
                live = await conn.api.request("GET", resources.PODS.path(meta.get("namespace"), meta["name"]))
            except NotFound:
                print(f"pod/{meta['name']} evicted")
                continue
            if (live.get("metadata") or {}).get("uid") != meta.get("uid"):
                print(f"pod/{meta['name']} evicted")  # re-created under the same name: ours is gone
                continue
            still.append(pod)
        pending = still
        if pending:
            if deadline is not None and loop.time() > deadline:
                return False
            await asyncio.sleep(0.2)
    return True
