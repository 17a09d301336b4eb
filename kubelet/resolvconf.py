"""A pod's /etc/resolv.conf by its `dnsPolicy` and `dnsConfig`, as the kubelet writes it (pure).

    policy                   hostNetwork   base
    ClusterFirst (default)   no            cluster: nameserver = the cluster DNS, search
                                           <ns>.svc.<domain> svc.<domain> <domain> + the node's,
                                           options ndots:5
    ClusterFirst             yes           host (a host-network pod keeps the node's resolver)
    ClusterFirstWithHostNet  either        cluster
    Default                  either        host: the node's resolv.conf (nameservers, search, options)
    None                     either        empty: only what dnsConfig gives

Then `dnsConfig` is merged in, whatever the policy: nameservers and searches appended (a
duplicate dropped, the first kept), options by name (the pod's value wins). Last the limits:
at most 3 nameservers, 32 search domains and 2048 characters of search line, as Kubernetes
has; what is cut is reported in `warnings` (the kubelet's DNSConfigForming event) and the
file keeps the first ones. A cluster policy on a kubelet without `--cluster-dns` falls back
to the host's resolver with a warning (Kubernetes' MissingClusterDNS), rather than giving the
pod no nameserver at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from api.core import PodSpec

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
CLUSTER_OPTIONS = ("ndots:5",)
POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")


@dataclass(frozen=True, slots=True)
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)  # "ndots:5", "edns0"

    def text(self) -> str:
        lines = [f"nameserver {s}" for s in self.nameservers]
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n" if lines else ""


@dataclass(frozen=True, slots=True)
class PodDNS:
    """What the pod gets, and why some of what it asked for is missing (event messages)."""

    conf: ResolvConf
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (event reason, message)


def parse(text: str) -> ResolvConf:
    """The node's resolv.conf: every `nameserver`, the last `search` (or `domain`) line, every
    `options` word (a later one of the same name wins); comments (`#`, `;`) skipped."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        key, rest = words[0], words[1:]
        if key == "nameserver" and rest:
            servers.append(rest[0])
        elif key in ("search", "domain"):
            searches = [s.rstrip(".") for s in rest if s.rstrip(".")]
        elif key == "options":
            options = _merge_options(options, rest)
    return ResolvConf(servers, searches, options)


def _unique(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in items if not (x in seen or seen.add(x))]  # type: ignore[func-returns-value]


def _merge_options(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    """Options by name (the part before ':'), the later value winning, in first-seen order."""
    by_name: dict[str, str] = {}
    for opt in [*base, *extra]:
        by_name[opt.split(":", 1)[0]] = opt
    return list(by_name.values())


def kind(spec: PodSpec) -> str:
    """"cluster", "host" or "none" for the pod's policy (see the module's table)."""
    policy = spec.dns_policy or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.host_network):
        return "cluster"
    return "host"


def pod_dns(spec: PodSpec, namespace: str, *, node: ResolvConf, cluster_dns: Sequence[str],
            domain: str = "cluster.local") -> PodDNS:
    """The pod's resolver configuration from its spec, the node's resolv.conf (already parsed),
    the kubelet's `--cluster-dns` addresses and `--cluster-domain`."""
    warnings: list[tuple[str, str]] = []
    base = kind(spec)
    if base == "cluster" and not cluster_dns:
        warnings.append(("MissingClusterDNS", f'kubelet does not have ClusterDNS IP configured and cannot create '
                         f'Pod using "{spec.dns_policy or "ClusterFirst"}" policy. Falling back to "Default" policy.'))
        base = "host"
    if base == "cluster":
        own = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain] if domain else []
        servers, searches, options = list(cluster_dns), _unique([*own, *node.searches]), list(CLUSTER_OPTIONS)
    elif base == "host":
        servers, searches, options = list(node.nameservers), list(node.searches), list(node.options)
    else:
        servers, searches, options = [], [], []
    cfg = spec.dns_config
    if cfg is not None:
        servers = _unique([*servers, *(cfg.nameservers or [])])
        searches = _unique([*searches, *(cfg.searches or [])])
        asked = [o.name + (f":{o.value}" if o.value is not None else "") for o in cfg.options or [] if o.name]
        options = _merge_options(options, asked)
    else:
        servers = _unique(servers)
    if len(servers) > MAX_NAMESERVERS:
        servers = servers[:MAX_NAMESERVERS]
        warnings.append(("DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, "
                         f"the applied nameserver line is: {' '.join(servers)}"))
    kept = _fit_searches(searches)
    if kept != searches:
        warnings.append(("DNSConfigForming", "Search Line limits were exceeded, some search paths have been "
                         f"omitted, the applied search line is: {' '.join(kept)}"))
    return PodDNS(ResolvConf(servers, kept, options), warnings)


def _fit_searches(searches: list[str]) -> list[str]:
    kept: list[str] = []
    for s in searches[:MAX_SEARCHES]:
        if len(" ".join([*kept, s])) > MAX_SEARCH_CHARS:
            break
        kept.append(s)
    return kept
