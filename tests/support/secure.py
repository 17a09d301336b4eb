"""A kubelite API server serving https on loopback with authentication and authorization on,
plus credentials for any identity the tests need (signed by the server's CA)."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

from aiohttp import web

from apiserver.app import REGISTRY, ServerConfig, create_app
from apiserver.auth import pki
from apiserver.auth.config import SecurityMaterial, ensure_security, install
from apiserver.auth.pki import CertPaths, ClusterPKI, Identity
from apiserver.etcd_process import free_port

_WIRED = "auth" in {f.name for f in dataclasses.fields(ServerConfig)}


class SecureApiServer:
    """Like tests.support.cluster.ApiServer, over TLS, with `auth.install` wired in."""

    def __init__(self, etcd_url: str, data_dir: Path, **config: object) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.material: SecurityMaterial = ensure_security(data_dir / "server", advertise_url=self.url,
                                                          ips=["127.0.0.1"])
        self.config = ServerConfig(etcd_servers=etcd_url, **config)  # type: ignore[arg-type]
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pki(self) -> ClusterPKI:
        return self.material.config.pki

    async def start(self) -> None:
        if _WIRED:  # ServerConfig.auth exists: create_app installs the auth layer itself
            self.config.auth = self.material.config  # type: ignore[attr-defined]
            app = create_app(self.config)
        else:
            app = create_app(self.config)
            install(app, self.material.config, registry_key=REGISTRY)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True,
                           ssl_context=self.material.config.ssl_context())
        await site.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def credential(self, name: str, identity: Identity) -> CertPaths:
        """A client certificate for `identity`, signed by the cluster CA."""
        return self.pki.ensure_client_cert(self.pki.load_ca(), name, identity)

    def ssl_for(self, identity: Identity | None, *, name: str | None = None) -> ssl.SSLContext:
        """A client TLS context trusting the cluster CA and presenting `identity`'s certificate."""
        cert = None
        if identity is not None:
            cert = self.credential(name or identity.user.replace(":", "-"), identity)
        return pki.client_ssl_context(self.pki.ca_cert, cert)
