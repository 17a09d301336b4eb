"""The kubectl-like object verbs: `apply`, `create`, `get`, `describe`, `delete`, `scale`,
`rollout`, `cordon`, `uncordon`, `drain`.

This module only builds the argparse tree and runs a verb: it resolves the server
(cli/config.py), opens the clients, and turns every error into kubectl's words on stderr
and exit code 1. The verbs themselves live in one module each and take
`(args, connection)`; they print results on stdout and return the exit code, so that a
script can trust `0` to mean every object was handled.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from api.client import ApiConnectionError, ApiTimeout
from api.errors import ApiError
from cli.config import ConfigError, Connection, add_connection_flags, connect
from cli.printers import error_text

Verb = Callable[[argparse.Namespace, Connection], Awaitable[int]]

OUTPUTS = ("wide", "yaml", "json", "name")


class UsageError(Exception):
    """The command line asks for something that cannot be done; the message says what to type."""


class ServerWarnings(logging.Handler):
    """api.client logs each `Warning` header; print it as kubectl does: `Warning: <text>`."""

    def emit(self, record: logging.LogRecord) -> None:
        if "server warning" in str(record.msg) and isinstance(record.args, tuple) and record.args:
            text = str(record.args[-1])
            code, _, rest = text.partition(" - ")  # RFC 7234: `299 - "text"`
            if code.isdigit() and rest:
                text = rest.strip().removeprefix('"').removesuffix('"')
            print(f"Warning: {text}", file=sys.stderr)
        else:
            print(f"warning: {record.getMessage()}", file=sys.stderr)


def _install_warnings() -> None:
    logger = logging.getLogger("api.client")
    if not any(isinstance(h, ServerWarnings) for h in logger.handlers):
        logger.addHandler(ServerWarnings(logging.WARNING))


def run(verb: Verb) -> Callable[[argparse.Namespace], Awaitable[int]]:
    """The `func` of a verb's parser: connect, run, and report errors as kubectl does."""

    async def func(args: argparse.Namespace) -> int:
        _install_warnings()
        try:
            conn = connect(args)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        async with conn:
            try:
                return await verb(args, conn)
            except (ApiError, ApiConnectionError, ApiTimeout) as err:
                print(error_text(err, server=conn.target.server, origin=conn.target.source), file=sys.stderr)
            except (UsageError, ValueError, KeyError) as err:
                message = err.args[0] if isinstance(err, KeyError) and err.args else err
                print(f"error: {message}", file=sys.stderr)
            return 1

    return func


def _parser(subparsers: Any, name: str, help_: str, verb: Verb, **kwargs: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(name, help=help_, description=help_, **kwargs)
    add_connection_flags(p)
    p.set_defaults(func=run(verb))
    return p


def _namespace_flag(p: argparse.ArgumentParser, *, all_namespaces: bool = False) -> None:
    p.add_argument("-n", "--namespace", metavar="NS", help="namespace (default: the context's, else default)")
    if all_namespaces:
        p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")


def _files_flag(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("-f", "--filename", action="append", default=[], required=required, metavar="FILE",
                   help="manifest file, directory or - for stdin (repeatable)")
    p.add_argument("-R", "--recursive", action="store_true", help="read directories recursively")


def register(subparsers: Any) -> None:
    from cli import apply, delete, describe, get, nodes, rollout

    p = _parser(subparsers, "apply", "create or update objects from manifests (client-side apply)", apply.apply_cmd)
    _files_flag(p, required=True)
    _namespace_flag(p)

    p = _parser(subparsers, "create", "create objects from manifests, or a namespace, deployment, configmap or "
                "secret", apply.create_cmd)
    _files_flag(p, required=False)
    _namespace_flag(p)
    p.add_argument("what", nargs="*", metavar="TYPE NAME",
                   help="`namespace NAME`, `deployment NAME --image IMG [-- CMD ...]`, `configmap NAME`, "
                        "`secret generic|tls|docker-registry NAME`")
    p.add_argument("--image", action="append", default=[], metavar="IMAGE",
                   help="deployment: a container of this image (repeatable)")
    p.add_argument("--replicas", type=int, default=1, metavar="N", help="deployment: how many pods (default 1)")
    p.add_argument("--port", type=int, metavar="PORT", help="deployment: the port the container exposes")
    p.add_argument("--from-literal", action="append", default=[], metavar="KEY=VALUE",
                   help="configmap/secret: a key and its value (repeatable)")
    p.add_argument("--from-file", action="append", default=[], metavar="[KEY=]PATH",
                   help="configmap/secret: a file's content under KEY (default: its name), or each file of a "
                        "directory (repeatable)")
    p.add_argument("--from-env-file", action="append", default=[], metavar="PATH",
                   help="configmap/secret: KEY=VALUE lines of a file (repeatable)")
    p.add_argument("--type", metavar="TYPE", help="secret generic: the Secret's type (default Opaque)")
    p.add_argument("--cert", metavar="PATH", help="secret tls: PEM certificate")
    p.add_argument("--key", metavar="PATH", help="secret tls: PEM private key")
    p.add_argument("--docker-server", metavar="URL", help="secret docker-registry: registry (default Docker Hub)")
    p.add_argument("--docker-username", metavar="USER", help="secret docker-registry: user name")
    p.add_argument("--docker-password", metavar="PASSWORD", help="secret docker-registry: password")
    p.add_argument("--docker-email", metavar="EMAIL", help="secret docker-registry: email")

    p = _parser(subparsers, "get", "list objects as tables, YAML, JSON or names", get.get_cmd)
    p.add_argument("targets", nargs="+", metavar="TYPE[/NAME] [NAME...]",
                   help="pods, deploy, rs, svc, ep, endpointslices, nodes, ns, events, all; comma-separated "
                   "types allowed")
    _namespace_flag(p, all_namespaces=True)
    _selector_flags(p)
    p.add_argument("-o", "--output", choices=OUTPUTS, help="wide|yaml|json|name")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, print changes as they happen")
    p.add_argument("--show-labels", action="store_true", help="add a LABELS column")
    p.add_argument("-L", "--label-columns", action="append", default=[], metavar="KEY",
                   help="add a column with this label's value (repeatable, or comma-separated)")
    p.add_argument("--no-headers", action="store_true", help="omit the header line")

    p = _parser(subparsers, "describe", "show an object in detail, with its events", describe.describe_cmd)
    p.add_argument("targets", nargs="+", metavar="TYPE[/NAME] [NAME...]")
    _namespace_flag(p, all_namespaces=True)
    p.add_argument("-l", "--selector", metavar="SEL", help="label selector")

    p = _parser(subparsers, "delete", "delete objects by name, manifest, label or all", delete.delete_cmd)
    p.add_argument("targets", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    _files_flag(p, required=False)
    _namespace_flag(p, all_namespaces=True)
    _selector_flags(p)
    p.add_argument("--all", action="store_true", help="every object of the type in the namespace")
    p.add_argument("--grace-period", type=int, default=None, metavar="N",
                   help="seconds a pod gets to stop (0: at once; default: the pod's own)")
    p.add_argument("--force", action="store_true", help="with --grace-period 0: do not wait for the kubelet")
    p.add_argument("--wait", action=argparse.BooleanOptionalAction, default=False,
                   help="wait until the objects are gone (default: no)")
    p.add_argument("--ignore-not-found", action="store_true", help="a missing object is not an error")

    p = _parser(subparsers, "scale", "set the replicas of a deployment or replica set", nodes.scale_cmd)
    p.add_argument("targets", nargs="+", metavar="TYPE/NAME | TYPE NAME")
    p.add_argument("--replicas", type=int, required=True, metavar="N")
    _namespace_flag(p)

    rollout.register(subparsers, _parser, _namespace_flag)

    for name, help_ in (("cordon", "mark a node unschedulable"), ("uncordon", "mark a node schedulable")):
        p = _parser(subparsers, name, help_, nodes.cordon_cmd)
        p.add_argument("nodes", nargs="+", metavar="NODE")
        p.set_defaults(unschedulable=name == "cordon")

    p = _parser(subparsers, "drain", "cordon a node and evict its pods", nodes.drain_cmd)
    p.add_argument("nodes", nargs="+", metavar="NODE")
    p.add_argument("--force", action="store_true", help="also delete pods no controller will re-create")
    p.add_argument("--ignore-daemonsets", action="store_true", help="leave DaemonSet pods in place")
    p.add_argument("--grace-period", type=int, default=None, metavar="N")
    p.add_argument("--timeout", type=float, default=0.0, metavar="SECONDS",
                   help="give up waiting for the pods to go after this long (default 0: wait forever)")


def _selector_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-l", "--selector", metavar="SEL", help="label selector, e.g. app=web,tier!=db")
    p.add_argument("--field-selector", metavar="SEL", help="field selector, e.g. spec.nodeName=n1")
