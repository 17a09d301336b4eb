"""Which API server the object verbs talk to, and how: `--server`, env, kubeconfig, default.

Resolution order (first that gives a server wins), so that a flag always beats the
environment and the environment beats files, as with kubectl:

1. `--server URL`
2. `$KUBELITE_SERVER`
3. a kubeconfig-style file: `--kubeconfig`, else `$KUBECONFIG` (first existing entry of
   the colon-separated list), else `~/.kube/config`, else `/var/lib/kubelite/admin.kubeconfig`,
   else `/var/lib/kubelite/server/admin.kubeconfig` (written by `kubelite server`);
   its current context names a cluster (`server`, `certificate-authority[-data]`,
   `insecure-skip-tls-verify`), a user (`token`, `tokenFile`, `client-certificate[-data]`,
   `client-key[-data]`) and a default namespace
4. `http://127.0.0.1:6443`

`Target.source` remembers which one won, because "cannot reach the API server" is only
useful if it also says where that address came from and how to point elsewhere.
"""

from __future__ import annotations

import argparse
import base64
import os
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from api.client import Client

DEFAULT_SERVER = "http://127.0.0.1:6443"
DEFAULT_KUBECONFIGS = (
    Path("~/.kube/config"),
    Path("/var/lib/kubelite/admin.kubeconfig"),
    Path("/var/lib/kubelite/server/admin.kubeconfig"),  # what `kubelite server --secure` writes
)
DEFAULT_SOURCE = "the built-in default: no --server, $KUBELITE_SERVER or kubeconfig was found"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"


class ConfigError(Exception):
    """The kubeconfig named by the user cannot be read or does not make sense."""


@dataclass(frozen=True, slots=True)
class Target:
    server: str
    source: str  # "--server", "$KUBELITE_SERVER", "kubeconfig /path", DEFAULT_SOURCE
    namespace: str | None = None  # the current context's namespace, if any
    token: str | None = None
    ssl: ssl.SSLContext | None = None


def add_connection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", "-s", metavar="URL", help="API server URL (default: $KUBELITE_SERVER, the "
                   "kubeconfig's current context, else http://127.0.0.1:6443)")
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig-style file to read the server from "
                   "(default: $KUBECONFIG, ~/.kube/config, /var/lib/kubelite/admin.kubeconfig)")
    p.add_argument("--request-timeout", type=float, default=None, metavar="SECONDS",
                   help="give up on a request after this long (default 30; a watch runs until interrupted)")


def resolve(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Target:
    """The server this invocation talks to (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    server = getattr(args, "server", None)
    if server:
        return Target(_normalize(server), "--server", namespace=_kubeconfig_namespace(args, env))
    if env.get("KUBELITE_SERVER"):
        return Target(_normalize(env["KUBELITE_SERVER"]), "$KUBELITE_SERVER",
                      namespace=_kubeconfig_namespace(args, env))
    path = kubeconfig_path(getattr(args, "kubeconfig", None), env)
    if path is not None:
        return from_kubeconfig(path)
    return Target(DEFAULT_SERVER, DEFAULT_SOURCE)


def kubeconfig_path(flag: str | None, env: os._Environ[str] | dict[str, str]) -> Path | None:
    """The kubeconfig file to read, or None. A file named by flag must exist; defaults may not."""
    if flag:
        path = Path(flag).expanduser()
        if not path.is_file():
            raise ConfigError(f"the kubeconfig {flag} does not exist")
        return path
    for entry in (env.get("KUBECONFIG") or "").split(os.pathsep):
        if entry and Path(entry).expanduser().is_file():
            return Path(entry).expanduser()
    for candidate in DEFAULT_KUBECONFIGS:
        try:
            if candidate.expanduser().is_file():
                return candidate.expanduser()
        except (OSError, RuntimeError):  # no home directory, unreadable /var/lib/kubelite
            continue
    return None


def _kubeconfig_namespace(args: argparse.Namespace, env: os._Environ[str] | dict[str, str]) -> str | None:
    try:
        path = kubeconfig_path(getattr(args, "kubeconfig", None), env)
        return from_kubeconfig(path).namespace if path else None
    except ConfigError:
        return None


def _normalize(server: str) -> str:
    server = server.strip().rstrip("/")
    if "://" not in server:  # `--server 10.0.0.1:6443`, as kubectl accepts
        server = f"http://{server}"
    return server


def _named(entries: Any, name: str | None, what: str, path: Path) -> dict[str, Any]:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(what)
            return body if isinstance(body, dict) else {}
    if name is None and entries and len(entries) == 1 and isinstance(entries[0], dict):
        body = entries[0].get(what)  # a file with a single cluster and no contexts
        return body if isinstance(body, dict) else {}
    raise ConfigError(f"{path}: no {what} named {name!r}")


def from_kubeconfig(path: Path) -> Target:
    """Read the current context's cluster, user and namespace from a kubeconfig file."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read the kubeconfig {path}: {err}") from err
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} is not a kubeconfig (want a mapping with clusters and contexts)")
    context: dict[str, Any] = {}
    if doc.get("current-context"):
        context = _named(doc.get("contexts"), doc["current-context"], "context", path)
    cluster = _named(doc.get("clusters"), context.get("cluster"), "cluster", path)
    user: dict[str, Any] = {}
    if context.get("user"):
        user = _named(doc.get("users"), context["user"], "user", path)
    server = cluster.get("server")
    if not server:
        raise ConfigError(f"{path}: the current context's cluster has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    return Target(_normalize(str(server)), f"kubeconfig {path}", namespace=context.get("namespace"),
                  token=token, ssl=_ssl_context(cluster, user, path) if str(server).startswith("https") else None)


def _ssl_context(cluster: dict[str, Any], user: dict[str, Any], path: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    with _material(cluster, "certificate-authority") as ca:
        if ca:
            ctx.load_verify_locations(cafile=ca)
    if cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with _material(user, "client-certificate") as cert, _material(user, "client-key") as key:
        if cert:
            try:
                ctx.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError) as err:
                raise ConfigError(f"{path}: cannot load the client certificate: {err}") from err
    return ctx


@contextmanager
def _material(section: dict[str, Any], field: str) -> Iterator[str | None]:
    """A file path for `field` or `field-data` (base64, written to a private temp file for ssl)."""
    if section.get(field):
        yield str(Path(section[field]).expanduser())
        return
    data = section.get(f"{field}-data")
    if not data:
        yield None
        return
    with tempfile.NamedTemporaryFile(prefix="kubelite-", suffix=".pem") as f:
        f.write(base64.b64decode(data))
        f.flush()
        yield f.name


class TableClient(Client):
    """A Client whose every reply is a server-side `Table` (what `kubectl get` asks for).

    The server renders columns from one place (apiserver/tables.py), so `kubelite get`
    and `kubectl get` cannot drift apart.
    """

    def __init__(self, server: str, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        # api.client offers no per-request Accept yet; its session headers come from here.
        self._headers["Accept"] = TABLE_ACCEPT


@dataclass(slots=True)
class Connection:
    """The clients of one command: plain JSON and Tables, closed together."""

    target: Target
    api: Client
    tables: TableClient

    def namespace(self, flag: str | None) -> str:
        """`-n`, else the kubeconfig context's namespace, else `default`."""
        return flag or self.target.namespace or "default"

    async def close(self) -> None:
        await self.api.close()
        await self.tables.close()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def connect(args: argparse.Namespace) -> Connection:
    target = resolve(args)
    timeout = float(getattr(args, "request_timeout", None) or 30.0)
    kwargs: dict[str, Any] = {"token": target.token, "ssl": target.ssl, "timeout": timeout,
                              "user_agent": "kubelite-cli"}
    return Connection(target, Client(target.server, **kwargs), TableClient(target.server, **kwargs))
