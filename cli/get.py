"""`kubelite get`: the server's Table responses printed as kubectl prints them.

Tables are asked for with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, so the
columns come from the server (apiserver/tables.py) exactly as `kubectl get` shows them;
this module only chooses columns (`-o wide`, `-A`, `--show-labels`, `-L`) and aligns them
with kubectl's tabwriter settings. `-o yaml|json|name` use plain JSON. Events are sorted
by time (their Table rows carry no timestamp, so a plain list supplies the order).
`-w` prints the list, then one row per change from that list's resourceVersion on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from api import resources
from api.errors import ApiError, NotFound
from api.resources import Resource
from cli import targets
from cli.config import Connection
from cli.printers import TableOptions, TabWriter, as_list, clean, dump_json, dump_yaml, kind_name, table_lines

Params = dict[str, str | int | bool | None]


async def get_cmd(args: argparse.Namespace, conn: Connection) -> int:
    wanted = targets.parse(args.targets)
    ns = None if args.all_namespaces else conn.namespace(args.namespace)
    if args.watch and (len(wanted.items) != 1 or len(wanted.items[0].names) > 1):
        raise ValueError("watch is only supported on individual resources and resource collections")
    params: Params = {"labelSelector": args.selector, "fieldSelector": args.field_selector}
    if args.watch and args.request_timeout:
        params["timeoutSeconds"] = max(1, int(args.request_timeout))
    labels = [key for spec in args.label_columns for key in spec.split(",") if key]
    printed, failed, last_rv = 0, False, ""
    structured: list[dict[str, Any]] = []
    for index, target in enumerate(wanted.items):
        res = target.resource
        if args.output in ("yaml", "json", "name"):
            objects, failed_here, last_rv = await _objects(conn, res, target.names, ns, params)
            failed |= failed_here
            structured.extend({"kind": res.kind, "apiVersion": res.api_version, **o} for o in objects)
            continue
        table, failed_here, last_rv = await _table(conn, res, target.names, ns, params)
        failed |= failed_here
        if not table["rows"] and not args.watch:
            continue
        options = TableOptions(wide=args.output == "wide", with_namespace=ns is None and res.namespaced,
                               show_labels=args.show_labels, no_headers=args.no_headers,
                               kind_prefix=kind_name(res) if wanted.prefixed else None, label_columns=labels)
        if printed and index:
            sys.stdout.write("\n")
        writer = TabWriter(sys.stdout, minwidth=6, padding=3, remember_widths=True)
        if table["rows"]:
            for line in table_lines(table, options):
                writer.line(*line)
            writer.flush()
            printed += 1
        if args.watch:  # an empty list prints its header with the first change
            await _watch_rows(conn, res, ns, params, table_rv=last_rv, names=target.names, writer=writer,
                              options=options, header=not table["rows"])
            return 1 if failed else 0
    if args.output in ("yaml", "json", "name"):
        _print_structured(structured, args.output, single=_single(wanted))
        if args.watch and wanted.items:
            await _watch_objects(conn, wanted.items[0].resource, ns, params, since=last_rv,
                                 names=wanted.items[0].names, output=args.output)
        printed = len(structured)
    if not printed and not failed:
        where = f" in {ns} namespace" if ns and all(t.resource.namespaced for t in wanted.items) else ""
        print(f"No resources found{where}.", file=sys.stderr)
    return 1 if failed else 0


def _single(wanted: targets.Targets) -> bool:
    """One named object: printed as itself rather than inside a List, as kubectl does."""
    return len(wanted.items) == 1 and len(wanted.items[0].names) == 1


def _print_structured(objects: list[dict[str, Any]], output: str, *, single: bool) -> None:
    if output == "name":
        for obj in objects:
            res = resources.BY_KIND[obj["kind"]]
            sys.stdout.write(f"{kind_name(res)}/{obj['metadata']['name']}\n")
        return
    if not objects and single:
        return
    doc = clean(objects[0]) if single else as_list(objects)
    sys.stdout.write(dump_yaml(doc) if output == "yaml" else dump_json(doc))


def _path(res: Resource, ns: str | None, name: str | None = None) -> str:
    return res.path(ns if res.namespaced else None, name)


def _report(err: ApiError) -> None:
    print(f"Error from server ({err.reason}): {err.message}", file=sys.stderr)


async def _table(conn: Connection, res: Resource, names: list[str], ns: str | None,
                 params: Params) -> tuple[dict[str, Any], bool, str]:
    """One Table for the names (or the whole list), the failure flag and the list's resourceVersion."""
    if not names:
        table: dict[str, Any] = await conn.tables.request("GET", _path(res, ns), params=params)
        if res is resources.EVENTS:
            await _sort_events(conn, table, ns, params)
        return table, False, str((table.get("metadata") or {}).get("resourceVersion") or "")
    merged: dict[str, Any] = {"columnDefinitions": [], "rows": []}
    failed = False
    for name in names:
        try:
            one = await conn.tables.request("GET", _path(res, ns or "default", name))
        except NotFound as err:
            _report(err)
            failed = True
            continue
        merged["columnDefinitions"] = one.get("columnDefinitions") or []
        merged["rows"].extend(one.get("rows") or [])
    return merged, failed, ""


async def _sort_events(conn: Connection, table: dict[str, Any], ns: str | None, params: Params) -> None:
    """Order event rows oldest first by last seen time, as `kubectl get events` users expect."""
    plain = await conn.api.request("GET", _path(resources.EVENTS, ns), params=params)
    when = {(o["metadata"].get("namespace"), o["metadata"]["name"]): event_time(o) for o in plain.get("items") or []}

    def key(row: dict[str, Any]) -> str:
        meta = (row.get("object") or {}).get("metadata") or {}
        return when.get((meta.get("namespace"), meta.get("name")), "")

    table["rows"] = sorted(table.get("rows") or [], key=key)


def event_time(event: dict[str, Any]) -> str:
    """The newest time an event carries (RFC 3339 strings sort as times)."""
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")


async def _objects(conn: Connection, res: Resource, names: list[str], ns: str | None,
                   params: Params) -> tuple[list[dict[str, Any]], bool, str]:
    if not names:
        data = await conn.api.request("GET", _path(res, ns), params=params)
        items = list(data.get("items") or [])
        if res is resources.EVENTS:
            items.sort(key=event_time)
        return items, False, str((data.get("metadata") or {}).get("resourceVersion") or "")
    out: list[dict[str, Any]] = []
    failed = False
    for name in names:
        try:
            out.append(await conn.api.request("GET", _path(res, ns or "default", name)))
        except NotFound as err:
            _report(err)
            failed = True
    return out, failed, ""


# ------------------------------------------------------------------- watch


def _watch_params(params: Params, since: str, names: list[str]) -> Params:
    out: Params = {**params, "watch": True, "allowWatchBookmarks": False}
    if since:
        out["resourceVersion"] = since
    if names:
        out["fieldSelector"] = ",".join(filter(None, [str(params.get("fieldSelector") or ""),
                                                      f"metadata.name={names[0]}"]))
    return out


async def _events(conn: Connection, res: Resource, ns: str | None, params: Params, *, tables: bool,
                  read_timeout: float | None) -> AsyncIterator[dict[str, Any]]:
    client = conn.tables if tables else conn.api
    async with client.stream("GET", _path(res, ns), params=params, read_timeout=read_timeout) as resp:
        async for line in watch_lines(resp):
            event = json.loads(line)
            if event.get("type") == "ERROR":
                status = event.get("object") or {}
                raise ApiError.from_status(status, int(status.get("code") or 500))
            if event.get("type") != "BOOKMARK":
                yield event


async def _watch_rows(conn: Connection, res: Resource, ns: str | None, params: Params, *, table_rv: str,
                      names: list[str], writer: TabWriter, options: TableOptions, header: bool) -> None:
    since = table_rv
    if names:  # a named get has no list revision: start from the current one
        since = str((await conn.api.request("GET", _path(res, ns), params={"limit": 1}))
                    .get("metadata", {}).get("resourceVersion") or "")
    async for event in _events(conn, res, ns, _watch_params(params, since, names), tables=True,
                               read_timeout=None):
        for line in table_lines(event["object"], options, header=header):
            writer.line(*line)
        writer.flush()
        header = False


async def _watch_objects(conn: Connection, res: Resource, ns: str | None, params: Params, *, since: str,
                         names: list[str], output: str) -> None:
    async for event in _events(conn, res, ns, _watch_params(params, since, names), tables=False,
                               read_timeout=None):
        obj = event["object"]
        _print_structured([obj], output, single=True)
        if output == "yaml":
            sys.stdout.write("---\n")
        sys.stdout.flush()


async def watch_lines(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Newline-delimited JSON of a watch body, however long a line (aiohttp's readline caps one)."""
    buf = bytearray()
    async for chunk in resp.content.iter_any():
        buf.extend(chunk)
        while (end := buf.find(b"\n")) >= 0:
            line = bytes(buf[:end]).strip()
            del buf[: end + 1]
            if line:
                yield line
    if buf.strip():
        yield bytes(buf).strip()
