"""Security for an API server beyond loopback: first-start material and the app wiring.

    material = ensure_security(data_dir, advertise_url="https://10.0.0.10:6443", ips=["10.0.0.10"])
    config = ServerConfig(etcd_servers=..., auth=material.config)
    app = create_app(config)            # calls install(app, config.auth, registry_key=REGISTRY)
    TCPSite(runner, host, 6443, ssl_context=material.config.ssl_context())

`ensure_security` is idempotent: the first start creates, every later start reuses (see
`pki.ClusterPKI`): the CA, the serving certificate (re-issued if an address is added), the
client certificates of the admin, scheduler, controller-manager and the API server's kubelet
client, their kubeconfigs, and a join token valid now. Everything lands under `data_dir`, 0600
files in 0700 directories:

    <data_dir>/pki/...                     see pki.py
    <data_dir>/admin.kubeconfig            kubectl --kubeconfig (CN=kubernetes-admin, O=system:masters)
    <data_dir>/scheduler.kubeconfig        the scheduler's identity
    <data_dir>/controller-manager.kubeconfig
    <data_dir>/join-tokens.json            join tokens (clear text, short-lived, see tokens.py)
    <data_dir>/join-command                `kubelite agent --server ... --token ... --ca-cert-hash ...`
    <data_dir>/tokens.json                 user bearer tokens (SHA-256 only)
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from apiserver.auth.authn import Authenticator, auth_middleware, registry_pod_lookup, registry_uses_lookup
from apiserver.auth.files import private_dir, write_private
from apiserver.auth.join import JoinService
from apiserver.auth.kubeconfig import write_kubeconfig
from apiserver.auth.kubeletcert import KubeletServingService
from apiserver.auth.pki import (
    ADMIN,
    APISERVER_KUBELET_CLIENT,
    CONTROLLER_MANAGER,
    DNS,
    SCHEDULER,
    CertPaths,
    ClusterPKI,
    Identity,
    client_ssl_context,
    server_ssl_context,
)
from apiserver.auth.tokens import JOIN_TOKEN_TTL, JoinToken, JoinTokenStore, UserTokenStore, ca_cert_hash
from apiserver.registry import Registry

KUBELET_CLIENT_CERT = "apiserver-kubelet-client"  # pki/<this>.crt: the API server towards kubelets


@dataclass
class AuthConfig:
    """What the API server needs to authenticate, authorize, serve TLS and let nodes join."""

    data_dir: Path
    advertise_url: str  # https://HOST:PORT, as nodes reach the server; signed into the cluster info
    unix_socket_identity: Identity | None = None

    def __post_init__(self) -> None:
        self.pki = ClusterPKI(self.data_dir)
        self.join_tokens = JoinTokenStore(self.data_dir / "join-tokens.json")
        self.user_tokens = UserTokenStore(self.data_dir / "tokens.json")

    def ssl_context(self) -> ssl.SSLContext:
        return server_ssl_context(self.pki)

    def kubelet_client_ssl(self) -> ssl.SSLContext:
        """TLS towards kubelets (logs, exec, stats): their serving certificates must chain to the
        cluster CA, and we present the API server's kubelet-client certificate."""
        return client_ssl_context(self.pki.ca_cert, self.pki.paths(KUBELET_CLIENT_CERT))

    def authenticator(self) -> Authenticator:
        return Authenticator(self.user_tokens, unix_socket_identity=self.unix_socket_identity)


def install(app: web.Application, config: AuthConfig, *, registry_key: web.AppKey[Registry]) -> None:
    """Add the auth middleware (innermost: after metrics and Status rendering) and the join routes.

    Call before the app is started (aiohttp freezes the middleware list on startup).
    """
    app.middlewares.append(auth_middleware(config.authenticator(),  # type: ignore[arg-type]
                                           pod_lookup=registry_pod_lookup(registry_key),
                                           uses_lookup=registry_uses_lookup(registry_key)))
    JoinService(config.pki, config.join_tokens, config.advertise_url).add_routes(app)
    KubeletServingService(config.pki).add_routes(app)


@dataclass(frozen=True)
class SecurityMaterial:
    config: AuthConfig
    ca_cert_hash: str
    join_token: JoinToken
    admin_kubeconfig: Path
    scheduler_kubeconfig: Path
    controller_manager_kubeconfig: Path
    kubelet_client: CertPaths  # the API server's certificate towards kubelets (logs, exec)
    dns_kubeconfig: Path

    def join_command(self) -> str:
        return (f"kubelite agent --server {self.config.advertise_url} --token {self.join_token} "
                f"--ca-cert-hash {self.ca_cert_hash}")


def ensure_security(data_dir: Path, *, advertise_url: str, ips: list[str] | tuple[str, ...] = (),
                    dns_names: list[str] | tuple[str, ...] = (), local_url: str | None = None,
                    join_token_ttl: dt.timedelta | None = JOIN_TOKEN_TTL,
                    unix_socket_identity: Identity | None = None) -> SecurityMaterial:
    """Create on first start, reuse afterwards (see the module docstring).

    `local_url` is where the in-process scheduler and controller-manager reach the server
    (default: `advertise_url`); both must be names or addresses among the SANs.
    """
    private_dir(data_dir)
    config = AuthConfig(data_dir, advertise_url, unix_socket_identity=unix_socket_identity)
    pki = config.pki
    ca = pki.ensure_ca()
    pki.ensure_server_cert(ca, ips=ips, dns_names=dns_names)
    kubeconfigs: dict[str, Path] = {}
    for name, identity, server in (("admin", ADMIN, advertise_url),
                                   ("scheduler", SCHEDULER, local_url or advertise_url),
                                   ("controller-manager", CONTROLLER_MANAGER, local_url or advertise_url),
                                   ("dns", DNS, local_url or advertise_url)):
        paths = pki.ensure_client_cert(ca, name, identity)
        kubeconfigs[name] = write_kubeconfig(data_dir / f"{name}.kubeconfig", server=server, ca_pem=ca.cert_pem,
                                             user=identity.user, cert_pem=paths.cert.read_bytes(),
                                             key_pem=paths.key.read_bytes())
    kubelet_client = pki.ensure_client_cert(ca, KUBELET_CLIENT_CERT, APISERVER_KUBELET_CLIENT)
    token = config.join_tokens.ensure(ttl=join_token_ttl)
    material = SecurityMaterial(config, ca_cert_hash(ca.cert), token, kubeconfigs["admin"],
                                kubeconfigs["scheduler"], kubeconfigs["controller-manager"], kubelet_client,
                                kubeconfigs["dns"])
    # For provisioning scripts: `ssh cp sudo cat .../join-command` on a worker, then run it.
    write_private(data_dir / "join-command", material.join_command() + "\n")
    return material
