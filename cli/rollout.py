"""`kubelite rollout status|history|undo|restart|pause|resume deployment/NAME`.

`status` reads the same fields as kubectl's DeploymentStatusViewer, in the same order:
until `status.observedGeneration` reaches `metadata.generation` the controller has not
seen the change yet; then updated, old and available replicas are compared with the
spec; a `Progressing` condition with reason `ProgressDeadlineExceeded` fails the
rollout. It prints a line whenever that message changes and follows the Deployment
with a watch, so it returns as soon as the rollout completes (exit 0) or fails (1).

`undo` puts back the template of the previous revision's ReplicaSet (the controller's
`rollback_template`); `restart` stamps the template with `restartedAt` so that every
pod is replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from api import resources
from api.apps import Deployment, ReplicaSet
from api.errors import ApiError
from cli import targets
from cli.config import Connection
from cli.get import watch_lines
from controllers.deployment_spec import REVISION, RollbackError, revision, rollback_template

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
CHANGE_CAUSE = "kubernetes.io/change-cause"
DEPLOY = resources.DEPLOYMENTS


class RolloutFailed(Exception):
    """The rollout cannot finish (its progress deadline passed)."""


def status_message(dep: dict[str, Any]) -> tuple[str, bool]:
    """kubectl's message for a Deployment's rollout and whether it is done.

    Raises RolloutFailed when the Progressing condition says the deadline was exceeded."""
    meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    name = meta.get("name", "")
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return "Waiting for deployment spec update to be observed...", False
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            raise RolloutFailed(f'deployment "{name}" exceeded its progress deadline')
    want = spec.get("replicas", 1)
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if want is not None and updated < int(want):
        return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {want} new replicas '
                f"have been updated..."), False
    if replicas > updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {replicas - updated} old replicas are '
                f"pending termination..."), False
    if available < updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated '
                f"replicas are available..."), False
    return f'deployment "{name}" successfully rolled out', True


def register(subparsers: Any, parser: Callable[..., argparse.ArgumentParser],
             namespace_flag: Callable[[argparse.ArgumentParser], None]) -> None:
    top = subparsers.add_parser("rollout", help="manage the rollout of a deployment",
                                description="manage the rollout of a deployment")
    verbs = top.add_subparsers(dest="rollout_verb", metavar="VERB", required=True)
    for verb, help_, func in (("status", "wait for a rollout to finish", status_cmd),
                              ("history", "list the revisions", history_cmd),
                              ("undo", "go back to the previous (or --to-revision) template", undo_cmd),
                              ("restart", "replace every pod", restart_cmd),
                              ("pause", "stop rolling out template changes", pause_cmd),
                              ("resume", "roll out template changes again", resume_cmd)):
        p = parser(verbs, verb, help_, func)
        p.add_argument("targets", nargs="+", metavar="deployment/NAME | deployment NAME")
        namespace_flag(p)
        if verb == "status":
            p.add_argument("-w", "--watch", action=argparse.BooleanOptionalAction, default=True,
                           help="follow until done (default); --no-watch prints the state once")
            p.add_argument("--timeout", type=float, default=0.0, metavar="SECONDS",
                           help="give up after this long (default 0: wait forever)")
        if verb in ("undo", "history"):
            p.add_argument("--to-revision" if verb == "undo" else "--revision", dest="revision", type=int,
                           default=0, metavar="N")


def _names(args: argparse.Namespace) -> list[str]:
    wanted = targets.parse(args.targets)
    out: list[str] = []
    for target in wanted.items:
        if target.resource is not DEPLOY:
            raise ValueError(f"no rollout for {target.resource.plural}: kubelite rolls out deployments only")
        if not target.names:
            raise ValueError("required resource not specified: give deployment/NAME")
        out.extend(target.names)
    return out


async def status_cmd(args: argparse.Namespace, conn: Connection) -> int:
    ns = conn.namespace(args.namespace)
    for name in _names(args):
        try:
            done = await asyncio.wait_for(_follow(conn, ns, name, watch=args.watch), args.timeout or None)
        except TimeoutError:
            print(f"error: timed out waiting for the condition (deployment/{name}, {args.timeout:g}s)",
                  file=sys.stderr)
            return 1
        except RolloutFailed as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        if not done:
            return 1
    return 0


async def _follow(conn: Connection, ns: str, name: str, *, watch: bool) -> bool:
    dep = await conn.api.request("GET", DEPLOY.path(ns, name))
    last = ""
    while True:
        message, done = status_message(dep)
        if message != last:
            print(message, flush=True)
            last = message
        if done or not watch:
            return done
        params = {"watch": True, "fieldSelector": f"metadata.name={name}",
                  "resourceVersion": dep["metadata"]["resourceVersion"]}
        async with conn.api.stream("GET", DEPLOY.path(ns), params=params) as resp:
            async for line in watch_lines(resp):
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    obj = event.get("object") or {}
                    raise ApiError.from_status(obj, int(obj.get("code") or 500))
                if event.get("type") == "DELETED":
                    raise RolloutFailed(f'deployment "{name}" was deleted')
                if event.get("type") in ("ADDED", "MODIFIED"):
                    dep = event["object"]
                    message, done = status_message(dep)
                    if message != last:
                        print(message, flush=True)
                        last = message
                    if done:
                        return True
        dep = await conn.api.request("GET", DEPLOY.path(ns, name))  # the watch ended: re-read


async def owned_replica_sets(conn: Connection, dep: Deployment) -> list[ReplicaSet]:
    """The ReplicaSets the Deployment controls (selected by its labels, owned by its uid)."""
    selector = ",".join(f"{k}={v}" for k, v in sorted((dep.spec.selector.match_labels or {}).items()))
    listed = await conn.api.request("GET", resources.REPLICASETS.path(dep.metadata.namespace),
                                    params={"labelSelector": selector or None})
    out = [ReplicaSet.from_dict(item) for item in listed.get("items") or []]
    return [rs for rs in out if (ref := rs.metadata.controller_ref()) is not None and ref.uid == dep.metadata.uid]


async def history_cmd(args: argparse.Namespace, conn: Connection) -> int:
    ns = conn.namespace(args.namespace)
    for name in _names(args):
        dep = Deployment.from_dict(await conn.api.request("GET", DEPLOY.path(ns, name)))
        rss = sorted(await owned_replica_sets(conn, dep), key=revision)
        if args.revision:
            match = [rs for rs in rss if revision(rs) == args.revision]
            if not match:
                raise ValueError(f"unable to find the specified revision {args.revision}")
            print(f"deployment.apps/{name} with revision #{args.revision}")
            template = match[0].spec.template.to_dict() if match[0].spec.template else {}
            sys.stdout.write(_template_text(template))
            continue
        print(f"deployment.apps/{name} ")
        rows = [("REVISION", "CHANGE-CAUSE")]
        rows += [(str(revision(rs)), (rs.metadata.annotations or {}).get(CHANGE_CAUSE, "<none>")) for rs in rss
                 if revision(rs) > 0]
        width = max(len(r[0]) for r in rows) + 2
        for rev, cause in rows:
            print(f"{rev.ljust(width)}{cause}")
        print()
    return 0


def _template_text(template: dict[str, Any]) -> str:
    meta = template.get("metadata") or {}
    labels = ",".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items())) or "<none>"
    lines = ["Pod Template:", f"  Labels:\t{labels}", "  Containers:"]
    for c in (template.get("spec") or {}).get("containers") or []:
        lines += [f"   {c.get('name')}:", f"    Image:\t{c.get('image')}"]
    return "\n".join(lines) + "\n\n"


async def undo_cmd(args: argparse.Namespace, conn: Connection) -> int:
    ns = conn.namespace(args.namespace)
    for name in _names(args):
        dep = Deployment.from_dict(await conn.api.request("GET", DEPLOY.path(ns, name)))
        try:
            template = rollback_template(dep, await owned_replica_sets(conn, dep), to_revision=args.revision)
        except RollbackError as err:
            raise ValueError(str(err)) from err
        if template.to_dict() == dep.spec.template.to_dict():
            current = (dep.metadata.annotations or {}).get(REVISION, "?")
            print(f"deployment.apps/{name} skipped rollback (current template already matches revision "
                  f"{args.revision or current})")
            continue
        patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": dep.metadata.resource_version},
                 {"op": "replace", "path": "/spec/template", "value": template.to_dict()}]
        await conn.api.request("PATCH", DEPLOY.path(ns, name), json=patch,
                               content_type="application/json-patch+json")
        print(f"deployment.apps/{name} rolled back")
    return 0


async def restart_cmd(args: argparse.Namespace, conn: Connection) -> int:
    ns = conn.namespace(args.namespace)
    for name in _names(args):
        dep = await conn.api.request("GET", DEPLOY.path(ns, name))
        if (dep.get("spec") or {}).get("paused"):
            raise ValueError(f"deployments.apps \"{name}\" can't restart paused deployment (run rollout resume first)")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        await conn.api.request("PATCH", DEPLOY.path(ns, name), json=patch,
                               content_type="application/strategic-merge-patch+json")
        print(f"deployment.apps/{name} restarted")
    return 0


async def _set_paused(args: argparse.Namespace, conn: Connection, paused: bool) -> int:
    ns = conn.namespace(args.namespace)
    word = "paused" if paused else "resumed"
    for name in _names(args):
        dep = await conn.api.request("GET", DEPLOY.path(ns, name))
        if bool((dep.get("spec") or {}).get("paused")) == paused:
            print(f'error: deployments.apps "{name}" is {"already paused" if paused else "not paused"}',
                  file=sys.stderr)
            return 1
        await conn.api.request("PATCH", DEPLOY.path(ns, name), json={"spec": {"paused": paused or None}},
                               content_type="application/merge-patch+json")
        print(f"deployment.apps/{name} {word}")
    return 0


async def pause_cmd(args: argparse.Namespace, conn: Connection) -> int:
    return await _set_paused(args, conn, True)


async def resume_cmd(args: argparse.Namespace, conn: Connection) -> int:
    return await _set_paused(args, conn, False)
