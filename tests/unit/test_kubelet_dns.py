"""The kubelet's pure DNS and service-discovery parts: resolv.conf by dnsPolicy, hostname and
/etc/hosts, the Docker-link service variables, and the API's checks of dnsPolicy/dnsConfig."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core import Container, EnvVar, Pod, PodDNSConfig, PodDNSConfigOption, PodSpec
from api.meta import ObjectMeta
from api.services import Service, ServicePort, ServiceSpec
from api.validation import Errors, check_pod_spec
from kubelet.envvars import container_env
from kubelet.podhosts import HostnameError, hosts_file, pod_names
from kubelet.resolvconf import ResolvConf, parse, pod_dns
from kubelet.servicelinks import service_env

NODE = parse("# from DHCP\nnameserver 198.51.100.53\nnameserver 198.51.100.54\nsearch corp.example. lab.example\n"
             "options timeout:2 attempts:3\n")


def spec(**kw: object) -> PodSpec:
    return PodSpec(containers=[Container(name="main", image="busybox")], **kw)  # type: ignore[arg-type]


def test_node_resolv_conf_is_parsed_as_a_resolver_reads_it() -> None:
    assert NODE == ResolvConf(["198.51.100.53", "198.51.100.54"], ["corp.example", "lab.example"],
                              ["timeout:2", "attempts:3"])
    assert parse("search a\nsearch b c ; old\ndomain d\noptions ndots:1\noptions ndots:2 edns0").searches == ["d"]
    assert parse("options ndots:1\noptions ndots:2 edns0").options == ["ndots:2", "edns0"]


def test_cluster_first_is_the_cluster_dns_with_the_namespace_search_path() -> None:
    got = pod_dns(spec(), "shop", node=NODE, cluster_dns=["10.43.0.10"])
    assert got.warnings == []
    assert got.conf.text() == ("nameserver 10.43.0.10\n"
                               "search shop.svc.cluster.local svc.cluster.local cluster.local "
                               "corp.example lab.example\n"
                               "options ndots:5\n")
    assert pod_dns(spec(dns_policy="ClusterFirst"), "x", node=ResolvConf(), cluster_dns=["10.43.0.10"],
                   domain="k.test").conf.searches == ["x.svc.k.test", "svc.k.test", "k.test"]


def test_host_network_pods_keep_the_node_resolver_unless_cluster_first_with_host_net() -> None:
    assert pod_dns(spec(host_network=True), "a", node=NODE, cluster_dns=["10.43.0.10"]).conf == NODE
    with_net = pod_dns(spec(host_network=True, dns_policy="ClusterFirstWithHostNet"), "a", node=NODE,
                       cluster_dns=["10.43.0.10"])
    assert with_net.conf.nameservers == ["10.43.0.10"] and with_net.conf.options == ["ndots:5"]


def test_default_is_the_node_resolv_conf() -> None:
    assert pod_dns(spec(dns_policy="Default"), "a", node=NODE, cluster_dns=["10.43.0.10"]).conf == NODE


def test_none_is_only_dns_config_with_option_values() -> None:
    cfg = PodDNSConfig(nameservers=["198.51.100.9"], searches=["svc.example"],
                       options=[PodDNSConfigOption(name="ndots", value="2"), PodDNSConfigOption(name="edns0")])
    got = pod_dns(spec(dns_policy="None", dns_config=cfg), "a", node=NODE, cluster_dns=["10.43.0.10"])
    assert got.conf.text() == "nameserver 198.51.100.9\nsearch svc.example\noptions ndots:2 edns0\n"


def test_dns_config_is_merged_into_the_other_policies() -> None:
    cfg = PodDNSConfig(nameservers=["10.43.0.10", "198.51.100.9"], searches=["cluster.local", "extra.example"],
                       options=[PodDNSConfigOption(name="ndots", value="1"), PodDNSConfigOption(name="rotate")])
    got = pod_dns(spec(dns_config=cfg), "a", node=ResolvConf(), cluster_dns=["10.43.0.10"])
    assert got.conf.nameservers == ["10.43.0.10", "198.51.100.9"]  # duplicates dropped, first kept
    assert got.conf.searches == ["a.svc.cluster.local", "svc.cluster.local", "cluster.local", "extra.example"]
    assert got.conf.options == ["ndots:1", "rotate"]  # the pod's value wins


def test_limits_cut_with_the_kubelets_warning() -> None:
    cfg = PodDNSConfig(nameservers=["198.51.100.1", "198.51.100.2", "198.51.100.3"])
    got = pod_dns(spec(dns_config=cfg), "a", node=NODE, cluster_dns=["10.43.0.10"])
    assert got.conf.nameservers == ["10.43.0.10", "198.51.100.1", "198.51.100.2"]
    assert got.warnings == [("DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been "
                             "omitted, the applied nameserver line is: 10.43.0.10 198.51.100.1 198.51.100.2")]
    many = pod_dns(spec(dns_config=PodDNSConfig(searches=[f"s{i}.example" for i in range(40)])), "a",
                   node=ResolvConf(), cluster_dns=["10.43.0.10"])
    assert len(many.conf.searches) == 32 and many.conf.searches[3] == "s0.example"
    assert many.warnings[0][0] == "DNSConfigForming" and "Search Line limits were exceeded" in many.warnings[0][1]


def test_no_cluster_dns_falls_back_to_the_node_resolver() -> None:
    got = pod_dns(spec(), "a", node=NODE, cluster_dns=[])
    assert got.conf == NODE and got.warnings[0][0] == "MissingClusterDNS"


names = st.lists(st.from_regex(r"[a-z]{1,70}\.example", fullmatch=True), max_size=50)
ips = st.lists(st.ip_addresses(v=4).map(str), max_size=6)


@given(policy=st.sampled_from(["ClusterFirst", "Default", "None", "ClusterFirstWithHostNet"]), servers=ips,
       searches=names, node_servers=ips, node_searches=names)
def test_limits_always_hold(policy: str, servers: list[str], searches: list[str], node_servers: list[str],
                            node_searches: list[str]) -> None:
    s = spec(dns_policy=policy, dns_config=PodDNSConfig(nameservers=servers, searches=searches))
    got = pod_dns(s, "ns", node=ResolvConf(node_servers, node_searches), cluster_dns=["10.43.0.10"]).conf
    assert len(got.nameservers) <= 3 and len(set(got.nameservers)) == len(got.nameservers)
    assert len(got.searches) <= 32 and len(" ".join(got.searches)) <= 2048
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        assert got.nameservers[0] == "10.43.0.10" and got.searches[0] == "ns.svc.cluster.local"


# ---------------------------------------------------------------- hostname and /etc/hosts


def pod(name: str = "web-0", ns: str = "shop", **kw: object) -> Pod:
    return Pod(metadata=ObjectMeta(name=name, namespace=ns), spec=spec(**kw))


def test_hostname_subdomain_and_hosts_file() -> None:
    plain = pod_names(pod())
    assert (plain.hostname, plain.domain, plain.uts) == ("web-0", "", "web-0")
    assert hosts_file(pod(), plain, "10.244.1.5").endswith("fe00::2\tip6-allrouters\n10.244.1.5\tweb-0\n")
    p = pod(hostname="db", subdomain="backend")
    names_ = pod_names(p)
    assert names_.fqdn == "db.backend.shop.svc.cluster.local" and names_.uts == "db"
    assert "10.244.1.5\tdb.backend.shop.svc.cluster.local\tdb\n" in hosts_file(p, names_, "10.244.1.5")
    fqdn = pod(hostname="db", subdomain="backend", set_hostname_as_fqdn=True)
    assert pod_names(fqdn).uts == "db.backend.shop.svc.cluster.local"
    assert pod_names(pod(set_hostname_as_fqdn=True)).uts == "web-0"  # no subdomain: no domain
    assert pod_names(pod("x" * 62 + "-y")).hostname == "x" * 62  # 63 characters, no trailing '-'


def test_fqdn_too_long_is_refused() -> None:
    with pytest.raises(HostnameError, match="64 characters is the max, 70 characters requested"):
        pod_names(pod(hostname="a" * 36, subdomain="b" * 10, set_hostname_as_fqdn=True))


def test_host_aliases_are_appended() -> None:
    p = pod(host_aliases=[{"ip": "198.51.100.7", "hostnames": ["foo.local", "bar.local"]}])
    assert hosts_file(p, pod_names(p), None).endswith(
        "\n# Entries added by HostAliases.\n198.51.100.7\tfoo.local\tbar.local\n")


# ---------------------------------------------------------------- service variables


def svc(name: str, ns: str, ip: str | None, *ports: ServicePort, type_: str | None = None) -> Service:
    return Service(metadata=ObjectMeta(name=name, namespace=ns),
                   spec=ServiceSpec(cluster_ip=ip, ports=list(ports), type=type_))


KUBERNETES = svc("kubernetes", "default", "10.43.0.1", ServicePort(name="https", port=443, protocol="TCP"))
DB = svc("db-main", "shop", "10.43.0.20", ServicePort(name="pg", port=5432, protocol="TCP"),
         ServicePort(port=9187, protocol="UDP"))


def test_docker_link_variables() -> None:
    env = service_env([KUBERNETES, DB], "shop")
    assert {k: v for k, v in env.items() if k.startswith("DB_MAIN")} == {
        "DB_MAIN_SERVICE_HOST": "10.43.0.20", "DB_MAIN_SERVICE_PORT": "5432", "DB_MAIN_SERVICE_PORT_PG": "5432",
        "DB_MAIN_PORT": "tcp://10.43.0.20:5432",
        "DB_MAIN_PORT_5432_TCP": "tcp://10.43.0.20:5432", "DB_MAIN_PORT_5432_TCP_PROTO": "tcp",
        "DB_MAIN_PORT_5432_TCP_PORT": "5432", "DB_MAIN_PORT_5432_TCP_ADDR": "10.43.0.20",
        "DB_MAIN_PORT_9187_UDP": "udp://10.43.0.20:9187", "DB_MAIN_PORT_9187_UDP_PROTO": "udp",
        "DB_MAIN_PORT_9187_UDP_PORT": "9187", "DB_MAIN_PORT_9187_UDP_ADDR": "10.43.0.20",
    }
    assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443" and env["KUBERNETES_PORT"] == "tcp://10.43.0.1:443"


def test_which_services_are_linked() -> None:
    other = svc("other", "elsewhere", "10.43.0.30", ServicePort(port=80))
    headless = svc("peers", "shop", "None", ServicePort(port=80))
    external = svc("ext", "shop", None, ServicePort(port=80), type_="ExternalName")
    unallocated = svc("new", "shop", "", ServicePort(port=80))
    env = service_env([KUBERNETES, DB, other, headless, external, unallocated], "shop")
    assert {k.split("_")[0] for k in env} == {"KUBERNETES", "DB"}
    # enableServiceLinks: false keeps only the API server's
    assert {k.split("_")[0] for k in service_env([KUBERNETES, DB], "shop", enable_links=False)} == {"KUBERNETES"}
    # a `kubernetes` Service of the pod's own namespace takes the place of default's
    own = svc("kubernetes", "shop", "10.43.0.99", ServicePort(port=8443))
    assert service_env([KUBERNETES, own], "shop")["KUBERNETES_SERVICE_HOST"] == "10.43.0.99"
    assert service_env([KUBERNETES, own], "shop", enable_links=False)["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"


def test_user_env_wins_and_may_refer_to_service_variables() -> None:
    c = Container(name="main", image="busybox", env=[EnvVar(name="DB_MAIN_SERVICE_PORT", value="1"),
                                                     EnvVar(name="URL", value="pg://$(DB_MAIN_SERVICE_HOST)/x")])
    p = Pod(metadata=ObjectMeta(name="a", namespace="shop"), spec=PodSpec(containers=[c]))
    env = container_env(p, c, {"DB_MAIN_SERVICE_HOST": "image", "PATH": "/bin"}, pod_ip=None, host_ip=None,
                        allocatable={}, service_env=service_env([DB], "shop"))
    assert env["DB_MAIN_SERVICE_PORT"] == "1" and env["URL"] == "pg://10.43.0.20/x"
    assert env["DB_MAIN_SERVICE_HOST"] == "10.43.0.20" and env["PATH"] == "/bin"


# ---------------------------------------------------------------- validation


def causes(s: PodSpec) -> list[tuple[str | None, str | None]]:
    errors = Errors()
    check_pod_spec(errors, "spec", s)
    return [(c.field, c.message) for c in errors.causes]


def test_dns_policy_and_config_validation() -> None:
    assert causes(spec(dns_policy="ClusterFirst", dns_config=PodDNSConfig(searches=["a.example"]))) == []
    assert causes(spec(dns_policy="Cluster")) == [("spec.dnsPolicy", 'Unsupported value: "Cluster": supported '
                                                   'values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", '
                                                   '"None"')]
    assert causes(spec(dns_policy="None")) == [
        ("spec.dnsConfig", "Required value: must provide `dnsConfig` when `dnsPolicy` is None")]
    assert causes(spec(dns_policy="None", dns_config=PodDNSConfig(searches=["a.example"]))) == [
        ("spec.dnsConfig.nameservers", "Required value: must provide at least one DNS nameserver when "
         "`dnsPolicy` is None")]
    bad = PodDNSConfig(nameservers=["1.1.1.1", "nope", "2.2.2.2", "3.3.3.3"], searches=["Bad_Name"],
                       options=[PodDNSConfigOption(value="2")])
    fields = [f for f, _ in causes(spec(dns_config=bad, hostname="Web", subdomain="a.b"))]
    assert fields == ["spec.hostname", "spec.subdomain", "spec.dnsConfig.nameservers",
                      "spec.dnsConfig.nameservers[1]", "spec.dnsConfig.searches[0]", "spec.dnsConfig.options[0].name"]
