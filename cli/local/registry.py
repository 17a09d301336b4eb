"""The cluster registry of `kubelite up`: where `kubelite build` pushes and every node pulls.

kind's local-registry recipe, on kubelite's terms:

    kubelite build -t my-app .  --push-->  docker-registry (Debian's), storage <state>/registry/
                                           on 127.0.0.1:5000 (one node) or 198.51.100.1:5000
                                           (the bridge gateway, which every simulated host reaches)
    kubelet on each node   --pull--> mirror of docker.io = that registry, then docker.io itself

With simulated hosts a second docker-registry process serves the same storage on
127.0.0.1:5000 (docker-registry listens on one address; instances sharing a storage is how
it scales out), and the nodes map `localhost:5000/...` and `127.0.0.1:5000/...` names to the
gateway address, as kind's recipe maps `localhost:5001`: a name that works on this machine
works on every node.

An unqualified name (`my-app` = docker.io/library/my-app:latest) is pushed under the
repository a docker.io mirror serves it from (`library/my-app`), so a node resolves
`my-app` through the mirror with no image name rewritten anywhere.

`up` seeds the registry with busybox:latest, built the same way every kubelet imports it
(the busybox image is reproducible: same package, same digest). So an Always pull of
busybox, which `:latest` implies, succeeds through the mirror without the internet and
transfers nothing the node has.

`up` records the registry's address in the up state and in the kubeconfig it writes (a
cluster extension named `kubelite.registry`, which kubectl carries along untouched, as it
does minikube's), which is how `kubelite build` knows to push.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from cli.local import daemons

EXTENSION = "kubelite.registry"
DEFAULT_PORT = 5000


class ClusterRegistryError(RuntimeError):
    pass


def binary() -> str | None:
    return shutil.which("docker-registry")


def config_text(*, address: str, storage: Path) -> str:
    """docker-registry's configuration: filesystem storage, deletes allowed, plain http on `address`."""
    return (
        "version: 0.1\n"
        "log: {level: warn, accesslog: {disabled: true}}\n"
        f"storage: {{filesystem: {{rootdirectory: {storage}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '{address}'}}\n"
    )


DAEMONS = ("registry", "registry-loopback")  # on the nodes' address; on 127.0.0.1 when that differs


def start(state_dir: Path, *, address: str, timeout: float = 20) -> None:
    """Run the registry on `address` (and on 127.0.0.1 at the same port, when `address` is not
    loopback) as daemons of the cluster; return when each answers /v2/."""
    exe = binary()
    if exe is None:
        raise ClusterRegistryError("docker-registry is not installed (apt-get install docker-registry)")
    root = state_dir / "registry"
    root.mkdir(parents=True, exist_ok=True)
    listeners = [address] if address == loopback_alias(address) else [address, loopback_alias(address)]
    for name, listen in zip(DAEMONS, listeners, strict=False):
        config = root / f"{name}.yml"
        config.write_text(config_text(address=listen, storage=root / "data"))
        daemons.start(name, [exe, "serve", str(config)], state_dir)
    for name, listen in zip(DAEMONS, listeners, strict=False):
        _wait(name, listen, state_dir, timeout)


def _wait(name: str, address: str, state_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if not daemons.running(name, state_dir) or time.monotonic() > deadline:
            log = (state_dir / f"{name}.log").read_text(errors="replace")[-500:]
            raise ClusterRegistryError(f"the cluster registry did not answer on {address}: {log.strip()}")
        time.sleep(0.05)


def stop(state_dir: Path) -> None:
    for name in DAEMONS:
        daemons.stop(name, state_dir)


def loopback_alias(address: str) -> str:
    return f"127.0.0.1:{address.rsplit(':', 1)[1]}"


def names(address: str) -> list[str]:
    """The names this machine can give the cluster registry at `address` in an image reference."""
    return list(dict.fromkeys([address, loopback_alias(address), f"localhost:{address.rsplit(':', 1)[1]}"]))


def mirror_settings(address: str) -> list[str]:
    """A node's `--registry-mirror` settings for the cluster registry at `address` (plain http):
    docker.io names, and every name of the registry itself, resolve to it."""
    return [f"docker.io=http://{address}", *(f"{name}=http://{address}" for name in names(address))]


def seed_busybox(state_dir: Path, *, address: str) -> str:
    """Push busybox:latest (reproducible, so identical to every node's own import) to the
    registry as library/busybox:latest; returns its digest. The scratch store goes afterwards."""
    from runtime.images.busybox import import_busybox
    from runtime.images.registry import RegistryClient
    from runtime.images.store import ImageStore

    scratch = state_dir / "registry" / "seed"
    try:
        store = ImageStore(scratch)
        digest = import_busybox(store)

        async def push() -> None:
            async with RegistryClient(store, insecure=True) as client:
                await client.push("busybox:latest", f"{address}/library/busybox:latest")

        asyncio.run(push())
        return digest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def from_kubeconfig(path: Path) -> str | None:
    """The cluster registry recorded in a kubeconfig's current cluster, or None."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(doc, dict):
        return None
    context = _entry(doc.get("contexts"), doc.get("current-context"))
    cluster = _entry(doc.get("clusters"), context.get("cluster"))
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == EXTENSION and isinstance(ext.get("extension"), dict):
            address = ext["extension"].get("address")
            return str(address) if address else None
    return None


def _entry(entries: Any, name: Any) -> dict[str, Any]:
    for item in entries if isinstance(entries, list) else []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get("cluster") or item.get("context") or {}
            return body if isinstance(body, dict) else {}
    return {}
