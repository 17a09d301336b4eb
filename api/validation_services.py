"""Semantic checks of Services, Endpoints and EndpointSlices (called by `api.validation.validate`).

Every problem is collected, as for the other kinds. What needs the cluster's state (a
ClusterIP or NodePort already taken, outside the configured range) is checked where the
state is, by the API server's allocator (`apiserver/allocator.py`), with the same causes.
"""

from __future__ import annotations

import ipaddress
import re

from api.services import Endpoints, EndpointSlice, Service, ServiceSpec
from api.validation import (
    PROTOCOLS,
    Errors,
    _check_port,
    check_dns_label,
    check_dns_subdomain,
    check_labels,
    check_metadata,
)

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
TRAFFIC_POLICIES = ("Cluster", "Local")
AFFINITIES = ("ClientIP", "None")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
MAX_AFFINITY_TIMEOUT = 86400

_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def _ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_service(errors: Errors, svc: Service) -> None:
    meta = svc.metadata
    check_metadata(errors, meta, namespaced=True, name_is_label=True)
    if meta.name and not _DNS1035_LABEL.match(meta.name):
        errors.invalid("metadata.name", meta.name, DNS1035_MSG)
    spec = svc.spec
    kind = spec.type or "ClusterIP"
    if kind not in SERVICE_TYPES:
        errors.not_supported("spec.type", spec.type, SERVICE_TYPES)
    if kind == "ExternalName":
        _check_external_name(errors, spec)
    else:
        _check_cluster_ip(errors, spec, kind)
        if not spec.ports and spec.cluster_ip != "None":
            errors.required("spec.ports")
    _check_ports(errors, spec, kind)
    check_labels(errors, "spec.selector", spec.selector)
    if spec.session_affinity not in (None, *AFFINITIES):
        errors.not_supported("spec.sessionAffinity", spec.session_affinity, AFFINITIES)
    client_ip = spec.session_affinity_config.client_ip if spec.session_affinity_config else None
    if client_ip is not None and client_ip.timeout_seconds is not None:
        if spec.session_affinity != "ClientIP":
            errors.forbidden("spec.sessionAffinityConfig",
                             "must not be set when session affinity is None")
        elif not 0 < client_ip.timeout_seconds <= MAX_AFFINITY_TIMEOUT:
            errors.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", client_ip.timeout_seconds,
                           f"must be greater than 0 and less than {MAX_AFFINITY_TIMEOUT}")
    if spec.external_traffic_policy is not None:
        if spec.external_traffic_policy not in TRAFFIC_POLICIES:
            errors.not_supported("spec.externalTrafficPolicy", spec.external_traffic_policy, TRAFFIC_POLICIES)
        elif kind not in NODE_PORT_TYPES:
            errors.invalid("spec.externalTrafficPolicy", spec.external_traffic_policy,
                           "may only be set for externally-accessible services")
    if spec.internal_traffic_policy is not None and spec.internal_traffic_policy not in TRAFFIC_POLICIES:
        errors.not_supported("spec.internalTrafficPolicy", spec.internal_traffic_policy, TRAFFIC_POLICIES)
    for i, ip in enumerate(spec.external_ips or []):
        if not _ipv4(ip):
            errors.invalid(f"spec.externalIPs[{i}]", ip, "must be a valid IPv4 address (e.g. 10.9.8.7)")
    if spec.ip_family_policy is not None:
        if spec.ip_family_policy not in IP_FAMILY_POLICIES:
            errors.not_supported("spec.ipFamilyPolicy", spec.ip_family_policy, IP_FAMILY_POLICIES)
        elif spec.ip_family_policy == "RequireDualStack":
            errors.invalid("spec.ipFamilyPolicy", spec.ip_family_policy,
                           "this cluster is not configured for dual-stack services")
    for i, family in enumerate(spec.ip_families or []):
        if family != "IPv4":
            errors.invalid(f"spec.ipFamilies[{i}]", family, "not configured on this cluster (IPv4 only)")


def _check_external_name(errors: Errors, spec: ServiceSpec) -> None:
    if not spec.external_name:
        errors.required("spec.externalName")
    else:
        check_dns_subdomain(errors, "spec.externalName", spec.external_name.rstrip("."))
    if spec.cluster_ip:
        errors.forbidden("spec.clusterIP", "may not be set for ExternalName services")
    if spec.selector:
        errors.forbidden("spec.selector", "may not be set when `type` is 'ExternalName' (a name, not pods, answers; "
                                          "`kubectl create service externalname` adds one: write a manifest instead)")


def _check_cluster_ip(errors: Errors, spec: ServiceSpec, kind: str) -> None:
    ip = spec.cluster_ip
    if spec.external_name:
        errors.forbidden("spec.externalName", f"may not be set when `type` is '{kind}'")
    if ip == "None":
        if kind in NODE_PORT_TYPES:
            errors.invalid("spec.clusterIP", ip, f"may not be set to 'None' for {kind} services")
    elif ip and not _ipv4(ip):
        errors.invalid("spec.clusterIP", ip, "must be empty, 'None', or a valid IPv4 address")
    ips = spec.cluster_ips or []
    if len(ips) > 1:
        errors.invalid("spec.clusterIPs", ips, "this cluster is not configured for dual-stack services")
    if ips and ip and ips[0] != ip:
        errors.invalid("spec.clusterIPs[0]", ips[0], "must match `clusterIP`")


def _check_ports(errors: Errors, spec: ServiceSpec, kind: str) -> None:
    ports = spec.ports or []
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    node_ports: set[tuple[int, str]] = set()
    for i, p in enumerate(ports):
        field = f"spec.ports[{i}]"
        if len(ports) > 1 and not p.name:
            errors.required(f"{field}.name")
        if p.name:
            check_dns_label(errors, f"{field}.name", p.name)
            if p.name in names:
                errors.duplicate(f"{field}.name", p.name)
            names.add(p.name)
        protocol = p.protocol or "TCP"
        if protocol not in PROTOCOLS:
            errors.not_supported(f"{field}.protocol", p.protocol, PROTOCOLS)
        _check_port(errors, f"{field}.port", p.port)
        if (p.port, protocol) in seen:
            errors.duplicate(field, {"port": p.port, "protocol": protocol})
        seen.add((p.port, protocol))
        if p.target_port is not None and p.target_port != p.port:  # a defaulted one is checked as `port`
            _check_port(errors, f"{field}.targetPort", p.target_port)
        if p.node_port is not None and p.node_port != 0:
            if kind not in NODE_PORT_TYPES:
                errors.forbidden(f"{field}.nodePort", f"may not be used when `type` is '{kind}'")
            elif (p.node_port, protocol) in node_ports:
                errors.duplicate(f"{field}.nodePort", p.node_port)
            node_ports.add((p.node_port, protocol))


def check_endpoints(errors: Errors, ep: Endpoints) -> None:
    check_metadata(errors, ep.metadata, namespaced=True)
    for i, subset in enumerate(ep.subsets or []):
        for group, addresses in (("addresses", subset.addresses), ("notReadyAddresses", subset.not_ready_addresses)):
            for j, a in enumerate(addresses or []):
                if not _ip(a.ip):
                    errors.invalid(f"subsets[{i}].{group}[{j}].ip", a.ip, "must be a valid IP address")
                if a.hostname:
                    check_dns_label(errors, f"subsets[{i}].{group}[{j}].hostname", a.hostname)
        for j, port in enumerate(subset.ports or []):
            _check_port(errors, f"subsets[{i}].ports[{j}].port", port.port)
            if (port.protocol or "TCP") not in PROTOCOLS:
                errors.not_supported(f"subsets[{i}].ports[{j}].protocol", port.protocol, PROTOCOLS)


MAX_SLICE_ENDPOINTS = 1000
MAX_SLICE_PORTS = 100


def check_endpoint_slice(errors: Errors, eps: EndpointSlice) -> None:
    check_metadata(errors, eps.metadata, namespaced=True)
    if eps.address_type not in ADDRESS_TYPES:
        errors.not_supported("addressType", eps.address_type, ADDRESS_TYPES)
    if len(eps.endpoints) > MAX_SLICE_ENDPOINTS:
        errors.invalid("endpoints", len(eps.endpoints), f"must have at most {MAX_SLICE_ENDPOINTS} items")
    for i, ep in enumerate(eps.endpoints):
        if not 1 <= len(ep.addresses) <= 100:
            errors.invalid(f"endpoints[{i}].addresses", len(ep.addresses), "must have between 1 and 100 items")
        for j, address in enumerate(ep.addresses):
            field = f"endpoints[{i}].addresses[{j}]"
            if eps.address_type == "IPv4" and not _ipv4(address):
                errors.invalid(field, address, "must be a valid IPv4 address")
            elif eps.address_type == "IPv6" and (not _ip(address) or _ipv4(address)):
                errors.invalid(field, address, "must be a valid IPv6 address")
            elif eps.address_type == "FQDN":
                check_dns_subdomain(errors, field, address)
        if ep.hostname:
            check_dns_label(errors, f"endpoints[{i}].hostname", ep.hostname)
    ports = eps.ports or []
    if len(ports) > MAX_SLICE_PORTS:
        errors.invalid("ports", len(ports), f"must have at most {MAX_SLICE_PORTS} items")
    names: set[str] = set()
    for i, port in enumerate(ports):
        name = port.name or ""
        if name:
            check_dns_label(errors, f"ports[{i}].name", name)
        if name in names:
            errors.duplicate(f"ports[{i}].name", name)
        names.add(name)
        if port.port is not None:
            _check_port(errors, f"ports[{i}].port", port.port, allow_zero=True)
        if (port.protocol or "TCP") not in PROTOCOLS:
            errors.not_supported(f"ports[{i}].protocol", port.protocol, PROTOCOLS)
