"""`kubelite delete TYPE NAME... | TYPE/NAME... | -f FILE | TYPE -l SEL | TYPE --all`.

Each deletion prints `pod "web" deleted` as it happens; a missing object prints the
server's NotFound and the rest still go (exit 1 at the end), as with kubectl.
Deletion propagates in the background (the garbage collector removes what the object
owned), kubectl's default. `--grace-period 0 --force` removes a bound pod at once
instead of leaving it to its kubelet; `--wait` polls until every object is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from api.errors import ApiError, NotFound
from api.resources import Resource
from cli import targets
from cli.apply import target_namespace
from cli.config import Connection
from cli.manifests import ManifestError, load
from cli.printers import error_text

Victim = tuple[Resource, str | None, str]  # resource, namespace, name


async def delete_cmd(args: argparse.Namespace, conn: Connection) -> int:
    if args.force and args.grace_period is None:
        args.grace_period = 0
    if args.grace_period == 0 and not args.force:
        args.grace_period = 1  # kubectl: 0 without --force means "as fast as the kubelet can"
    if args.filename:
        if args.targets:
            raise ValueError("use either -f FILE or TYPE NAME..., not both")
        try:
            manifests = load(args.filename, recursive=args.recursive)
        except ManifestError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        default = conn.namespace(args.namespace)
        victims = [(m.resource, target_namespace(m, args.namespace, default), m.name) for m in manifests]
    else:
        victims = await _from_targets(args, conn)
    failed = False
    deleted: list[Victim] = []
    for res, ns, name in victims:
        try:
            await conn.api.request("DELETE", res.path(ns, name), json=_options(args.grace_period))
        except NotFound as err:
            if not args.ignore_not_found:
                print(error_text(err), file=sys.stderr)
                failed = True
            continue
        except ApiError as err:
            print(error_text(err), file=sys.stderr)
            failed = True
            continue
        print(f'{_singular(res)} "{name}" deleted')
        deleted.append((res, ns, name))
    if args.wait:
        await _wait_gone(conn, deleted)
    return 1 if failed else 0


def _singular(res: Resource) -> str:
    return f"{res.singular}.{res.group}" if res.group else res.singular


def _options(grace: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
    if grace is not None:
        body["gracePeriodSeconds"] = grace
    return body


async def _from_targets(args: argparse.Namespace, conn: Connection) -> list[Victim]:
    if not args.targets:
        raise ValueError("you must provide one or more resources by argument or filename (-f)")
    wanted = targets.parse(args.targets)
    by_selection = bool(args.selector or args.field_selector or args.all)
    ns = None if args.all_namespaces else conn.namespace(args.namespace)
    out: list[Victim] = []
    for target in wanted.items:
        res = target.resource
        if target.names:
            if by_selection:
                raise ValueError("name cannot be provided when a selector or --all is specified")
            out.extend((res, ns or "default", name) for name in target.names)
            continue
        if not by_selection:
            raise ValueError(f'resource(s) were provided, but no name was specified: give NAME, -l SELECTOR '
                             f'or --all (e.g. kubelite delete {res.plural} --all)')
        params = {"labelSelector": args.selector, "fieldSelector": args.field_selector}
        listed = await conn.api.request("GET", res.path(ns if res.namespaced else None), params=params)
        for item in listed.get("items") or []:
            meta = item.get("metadata") or {}
            out.append((res, meta.get("namespace"), meta["name"]))
    if not out:
        where = f" in {ns} namespace" if ns else ""
        print(f"No resources found{where}", file=sys.stderr)
    return out


async def _wait_gone(conn: Connection, victims: list[Victim]) -> None:
    pending = list(victims)
    while pending:
        still: list[Victim] = []
        for res, ns, name in pending:
            try:
                await conn.api.request("GET", res.path(ns, name))
                still.append((res, ns, name))
            except NotFound:
                pass
        pending = still
        if pending:
            await asyncio.sleep(0.2)
