"""What a container sees of cluster DNS and service discovery, on the real kernel with a real
kubelet (bridge network in a simulated host) and API server: /etc/resolv.conf by dnsPolicy,
its hostname and /etc/hosts from hostname/subdomain, and the Docker-link variables of the
Services that existed when it started."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.client import Client
from api.core import Pod, PodDNSConfig, PodDNSConfigOption
from api.errors import AlreadyExists, NotFound
from api.meta import ObjectMeta
from api.services import Service, ServicePort, ServiceSpec
from kubelet.resolvconf import parse
from tests.node.test_kubelet_network import net_agent
from tests.node.test_kubelet_pods import Agent, pod, until

__all__ = ["net_agent"]

pytestmark = [pytest.mark.root]

SHOW = ("cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; hostname; echo ---; "
        "env | grep -E '^(KLTEST_DB|KUBERNETES)_' | sort; echo END; sleep 1000")


@pytest.fixture
async def services(client: Client) -> AsyncIterator[None]:
    db = Service(metadata=ObjectMeta(name="kltest-db", namespace="default"),
                 spec=ServiceSpec(cluster_ip="10.43.7.7", type="ClusterIP", selector={"app": "kltest-db"},
                                  ports=[ServicePort(name="pg", port=5432, target_port=5432, protocol="TCP")]))
    api = Service(metadata=ObjectMeta(name="kubernetes", namespace="default"),
                  spec=ServiceSpec(cluster_ip="10.43.0.1", type="ClusterIP",
                                   ports=[ServicePort(name="https", port=443, target_port=6443, protocol="TCP")]))
    await client.create(db)
    made_api = False
    with contextlib.suppress(AlreadyExists):  # the API server may keep its own
        await client.create(api)
        made_api = True
    try:
        yield
    finally:
        with contextlib.suppress(NotFound):
            await client.delete(Service, "kltest-db", namespace="default")
        if made_api:
            with contextlib.suppress(NotFound):
                await client.delete(Service, "kubernetes", namespace="default")


async def shown(agent: Agent, p: Pod) -> tuple[str, str, str, dict[str, str]]:
    """(resolv.conf, /etc/hosts, hostname, service variables) as the container printed them."""
    assert agent.kubelet and agent.kubelet.runtime
    path = agent.kubelet.runtime.log_path(p, "main", 0)
    lines: list[str] = []
    for _ in range(200):
        if path.exists():
            lines = [line.split(" ", 3)[3] for line in path.read_text().splitlines()]
            if "END" in lines:
                break
        await asyncio.sleep(0.1)
    assert "END" in lines, lines
    text = "\n".join(lines[:lines.index("END")])
    resolv, hosts, hostname, env = text.split("---\n")
    return resolv, hosts, hostname.strip(), dict(line.split("=", 1) for line in env.splitlines() if line)


async def running(client: Client, p: Pod) -> Pod:
    created = await client.create(p)
    await until(client, p.metadata.name or "", lambda x: x.status is not None and x.status.phase == "Running"
                and bool(x.status.pod_ip), timeout=30)
    return created


async def test_resolv_conf_hosts_hostname_and_service_variables(net_agent: Agent, client: Client,
                                                                services: None) -> None:
    assert net_agent.kubelet is not None
    for _ in range(100):  # the kubelet's Service informer sees the Services (a watch event away)
        if net_agent.kubelet.services.get("default/kltest-db") is not None:
            break
        await asyncio.sleep(0.05)
    first = pod("kltest-first", SHOW)
    first.spec.hostname, first.spec.subdomain = "db-0", "kltest-peers"
    created = await running(client, first)
    live = await client.get(Pod, "kltest-first", namespace="default")
    resolv, hosts, hostname, env = await shown(net_agent, created)
    assert resolv == ("nameserver 10.43.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local"
                      + "".join(f" {s}" for s in parse(Path("/etc/resolv.conf").read_text()).searches)
                      + "\noptions ndots:5\n")
    assert f"{live.status.pod_ip}\tdb-0.kltest-peers.default.svc.cluster.local\tdb-0\n" in hosts  # type: ignore[union-attr]
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert hostname == "db-0"
    assert env == {
        "KLTEST_DB_SERVICE_HOST": "10.43.7.7", "KLTEST_DB_SERVICE_PORT": "5432", "KLTEST_DB_SERVICE_PORT_PG": "5432",
        "KLTEST_DB_PORT": "tcp://10.43.7.7:5432", "KLTEST_DB_PORT_5432_TCP": "tcp://10.43.7.7:5432",
        "KLTEST_DB_PORT_5432_TCP_PROTO": "tcp", "KLTEST_DB_PORT_5432_TCP_PORT": "5432",
        "KLTEST_DB_PORT_5432_TCP_ADDR": "10.43.7.7",
        **{k: v for k, v in env.items() if k.startswith("KUBERNETES_")},
    }
    assert env["KUBERNETES_SERVICE_HOST"] == (await client.get(Service, "kubernetes", namespace="default")
                                              ).spec.cluster_ip
    assert env["KUBERNETES_SERVICE_PORT"] == "443"

    default = pod("kltest-default", SHOW)
    default.spec.dns_policy = "Default"
    resolv, hosts, hostname, _ = await shown(net_agent, await running(client, default))
    assert resolv == parse(Path("/etc/resolv.conf").read_text()).text()  # the node's resolver
    assert hostname == "kltest-default" and "\tkltest-default\n" in hosts

    none = pod("kltest-none", SHOW)
    none.spec.dns_policy, none.spec.enable_service_links = "None", False
    none.spec.dns_config = PodDNSConfig(nameservers=["198.51.100.53"], searches=["kltest.example"],
                                        options=[PodDNSConfigOption(name="ndots", value="2"),
                                                 PodDNSConfigOption(name="edns0")])
    none.spec.hostname, none.spec.subdomain, none.spec.set_hostname_as_fqdn = "web", "kltest-peers", True
    resolv, hosts, hostname, env = await shown(net_agent, await running(client, none))
    assert resolv == "nameserver 198.51.100.53\nsearch kltest.example\noptions ndots:2 edns0\n"
    assert hostname == "web.kltest-peers.default.svc.cluster.local"
    assert sorted(env) == ["KUBERNETES_PORT", "KUBERNETES_PORT_443_TCP", "KUBERNETES_PORT_443_TCP_ADDR",
                           "KUBERNETES_PORT_443_TCP_PORT", "KUBERNETES_PORT_443_TCP_PROTO",
                           "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBERNETES_SERVICE_PORT_HTTPS"]
