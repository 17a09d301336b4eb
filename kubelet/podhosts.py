"""A pod's hostname, its FQDN and its /etc/hosts, as the kubelet makes them (pure).

    hostname   spec.hostname, else the pod's name cut to 63 characters (no trailing '-' or '.')
    domain     <subdomain>.<namespace>.svc.<cluster domain> when spec.subdomain is set
    uts name   the hostname; with setHostnameAsFQDN and a domain, hostname.domain (at most
               64 characters, or the sandbox is refused, as Kubernetes refuses it)
    /etc/hosts the localhost lines, then `<pod IP>  <hostname>.<domain>  <hostname>` (or only the
               hostname without a subdomain), then the pod's hostAliases

This is what lets `hostname -f` and `getent hosts $(hostname)` work in a pod of a headless
Service's subdomain (StatefulSet style) without asking DNS.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.core import Pod

MAX_HOSTNAME = 63
MAX_FQDN = 64


class HostnameError(Exception):
    """The pod's hostname cannot be made (setHostnameAsFQDN with a name that is too long)."""


@dataclass(frozen=True, slots=True)
class PodNames:
    hostname: str  # the short name
    domain: str  # "" without a subdomain
    uts: str  # what `hostname` prints in the pod

    @property
    def fqdn(self) -> str:
        return f"{self.hostname}.{self.domain}" if self.domain else self.hostname


def pod_names(pod: Pod, *, domain: str = "cluster.local") -> PodNames:
    spec, meta = pod.spec, pod.metadata
    hostname = spec.hostname or (meta.name or "pod")[:MAX_HOSTNAME].rstrip("-.")
    sub = f"{spec.subdomain}.{meta.namespace or 'default'}.svc.{domain}" if spec.subdomain else ""
    uts = hostname
    if spec.set_hostname_as_fqdn and sub:
        uts = f"{hostname}.{sub}"
        if len(uts) > MAX_FQDN:
            raise HostnameError(f"failed to construct FQDN from pod hostname and cluster domain, FQDN {uts} is too "
                                f"long ({MAX_FQDN} characters is the max, {len(uts)} characters requested)")
    return PodNames(hostname=hostname, domain=sub, uts=uts)


def hosts_file(pod: Pod, names: PodNames, pod_ip: str | None) -> str:
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    if pod_ip:
        lines.append(f"{pod_ip}\t{names.fqdn}\t{names.hostname}" if names.domain else f"{pod_ip}\t{names.hostname}")
    aliases = [a for a in pod.spec.host_aliases or [] if a.get("ip") and a.get("hostnames")]
    if aliases:
        lines += ["", "# Entries added by HostAliases."]
        lines += [f"{a['ip']}\t" + "\t".join(str(h) for h in a["hostnames"]) for a in aliases]
    return "\n".join(lines) + "\n"
