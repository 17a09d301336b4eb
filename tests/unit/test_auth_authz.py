"""The authorization rule table, exhaustively: every identity x verb x resource x subresource x
namespace x name x bound node is checked against an allow-list written out independently below."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from apiserver.auth.authz import authorize, authorize_path, forbidden_message
from apiserver.auth.pki import (
    ADMIN,
    APISERVER_KUBELET_CLIENT,
    CONTROLLER_MANAGER,
    DNS,
    SCHEDULER,
    Identity,
    node_identity,
)
from apiserver.auth.requestinfo import request_info

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy")
RESOURCES = ("pods", "nodes", "namespaces", "events", "deployments", "replicasets", "leases", "services",
             "endpoints", "endpointslices", "configmaps", "secrets", "widgets")
SUBRESOURCES = (None, "status", "scale", "binding", "finalize", "eviction", "log", "exec", "proxy")
NAMESPACES = (None, "default", "kube-system", "kube-node-lease")
NAMES = (None, "n1", "n2", "kube-system", "web", "kube-dns")
BOUND = (None, "n1", "n2")

N1 = node_identity("n1")
USERS: dict[str, Identity] = {
    "admin": ADMIN,
    "kubelet-client": APISERVER_KUBELET_CLIENT,
    "node-n1": N1,
    "node-without-group": Identity("system:node:n1"),
    "node-group-without-name": Identity("system:node:", ("system:nodes",)),
    "scheduler": SCHEDULER,
    "controller-manager": CONTROLLER_MANAGER,
    "dns": DNS,
    "alice": Identity("alice", ("developers", "system:authenticated")),
    "fake-masters-name": Identity("system:masters"),
}

Cond = Callable[[str | None, str | None, str | None], bool]  # (namespace, name, bound node)


def always(ns: str | None, name: str | None, bound: str | None) -> bool:
    return True


def named(value: str) -> Cond:
    return lambda ns, name, bound: name == value


def in_ns(value: str) -> Cond:
    return lambda ns, name, bound: ns == value


def bound_to_n1(ns: str | None, name: str | None, bound: str | None) -> bool:
    return name is not None and bound == "n1"


READ = ("get", "list", "watch")
# identity -> [(verbs, resource, subresource, condition)]: the complete allow-list.
RULES: dict[str, list[tuple[tuple[str, ...], str, str | None, Cond]]] = {
    "node-n1": [
        (READ, r, None, always) for r in ("pods", "nodes", "namespaces", "leases", "events", "services",
                                          "endpoints", "endpointslices")
    ] + [
        # `bound` doubles as "a pod bound to this node names the object" (node_uses) here.
        (READ, r, None, bound_to_n1) for r in ("configmaps", "secrets")
    ] + [
        (("create", "update", "patch", "delete"), "nodes", None, named("n1")),
        (("get", "update", "patch"), "nodes", "status", named("n1")),
        (("create", "get", "update", "patch", "delete"), "leases", None,
         lambda ns, name, bound: ns == "kube-node-lease" and name == "n1"),
        (("get", "update", "patch"), "pods", "status", bound_to_n1),
        (("delete",), "pods", None, bound_to_n1),
        (("create", "update", "patch"), "events", None, always),
    ],
    "scheduler": [
        (READ, r, None, always) for r in ("pods", "nodes", "namespaces")
    ] + [
        (("create",), "pods", "binding", always),
        (("get", "update", "patch"), "pods", "status", always),
        (("create", "update", "patch"), "events", None, always),
        ((*READ, "create", "update", "patch"), "leases", None, in_ns("kube-system")),
        (("create",), "namespaces", None, named("kube-system")),
    ],
    "controller-manager": [
        (READ, r, None, always) for r in ("pods", "replicasets", "deployments", "nodes", "namespaces", "leases",
                                          "events", "services", "endpoints", "endpointslices", "configmaps",
                                          "secrets")
    ] + [
        (("create", "update", "patch", "delete", "deletecollection"), r, None, always)
        for r in ("pods", "replicasets", "deployments", "events", "endpoints", "endpointslices")
    ] + [
        (("delete", "deletecollection"), r, None, always) for r in ("services", "configmaps", "secrets")
    ] + [
        (("get", "update", "patch"), r, "status", always) for r in ("pods", "replicasets", "deployments", "nodes",
                                                                     "namespaces")
    ] + [
        (("get", "update", "patch"), r, "scale", always) for r in ("replicasets", "deployments")
    ] + [
        (("update", "patch", "delete"), "nodes", None, always),
        (("update", "patch", "delete"), "namespaces", None, always),
        (("create",), "namespaces", None, named("kube-system")),
        (("update",), "namespaces", "finalize", always),
        (("update", "patch", "delete", "deletecollection"), "leases", None, always),
        (("create",), "leases", None, in_ns("kube-system")),
    ],
    "dns": [
        (READ, r, None, always) for r in ("services", "endpointslices", "pods", "namespaces")
    ] + [
        (("create", "get", "update", "patch"), r, None,
         lambda ns, name, bound: ns == "kube-system" and name == "kube-dns")
        for r in ("services", "endpoints", "endpointslices")
    ],
}


def expected(user: str, verb: str, resource: str, sub: str | None, ns: str | None, name: str | None,
             bound: str | None) -> bool:
    if user in ("admin", "kubelet-client"):
        return True
    return any(verb in verbs and resource == r and sub == s and cond(ns, name, bound)
               for verbs, r, s, cond in RULES.get(user, []))


@pytest.mark.parametrize("user", list(USERS))
def test_every_request_matches_the_rule_table(user: str) -> None:
    identity = USERS[user]
    mismatches = []
    checked = 0
    for verb, resource, sub, ns, name, bound in itertools.product(VERBS, RESOURCES, SUBRESOURCES, NAMESPACES,
                                                                  NAMES, BOUND):
        allowed, reason = authorize(identity, verb, resource, ns, name, sub, bound, node_uses=bound == "n1")
        checked += 1
        if allowed != expected(user, verb, resource, sub, ns, name, bound):
            mismatches.append((verb, resource, sub, ns, name, bound, allowed, reason))
        if allowed:
            assert reason == ""
    assert checked == len(VERBS) * len(RESOURCES) * len(SUBRESOURCES) * len(NAMESPACES) * len(NAMES) * len(BOUND)
    assert not mismatches, f"{len(mismatches)} decisions differ from the table, e.g. {mismatches[:5]}"


def test_a_node_never_writes_another_nodes_objects() -> None:
    for verb in ("create", "update", "patch", "delete"):
        assert not authorize(N1, verb, "nodes", None, "n2")[0]
        assert not authorize(N1, verb, "leases", "kube-node-lease", "n2")[0]
    for verb in ("update", "patch"):
        assert not authorize(N1, verb, "nodes", None, "n2", "status")[0]
        assert not authorize(N1, verb, "pods", "default", "web", "status", "n2")[0]
    assert not authorize(N1, "delete", "pods", "default", "web", None, "n2")[0]
    assert not authorize(N1, "delete", "pods", "default", "web", None, None)[0]  # unbound or missing pod
    assert not authorize(N1, "update", "pods", "default", "web", None, "n1")[0]  # spec: never
    assert not authorize(N1, "deletecollection", "pods", "default", None, None, "n1")[0]
    assert not authorize(N1, "create", "pods", "default", "web")[0]
    assert authorize(node_identity("n2"), "delete", "pods", "default", "web", None, "n2")[0]


def test_denials_for_nodes_give_a_reason() -> None:
    allowed, reason = authorize(N1, "update", "nodes", None, "n2", "status")
    assert not allowed and reason == 'node "n1" may only modify its own Node object'
    allowed, reason = authorize(N1, "delete", "pods", "default", "web", None, "n2")
    assert not allowed and "pods bound to it" in reason


def test_non_resource_paths() -> None:
    alice = USERS["alice"]
    for path in ("/api", "/apis", "/api/v1", "/apis/apps/v1", "/version", "/openapi/v3", "/openapi/v3/api/v1",
                 "/healthz", "/readyz", "/livez"):
        assert authorize_path(alice, "get", path)[0], path
        assert not authorize_path(alice, "create", path)[0], path
    for path in ("/metrics", "/debug", "/apisx", "/kubelite/v1/x"):
        assert not authorize_path(alice, "get", path)[0], path
        assert authorize_path(ADMIN, "get", path)[0], path


def test_forbidden_message_has_kubernetes_wording() -> None:
    assert forbidden_message(N1, "delete", "pods", "", "default", "x") == (
        'pods "x" is forbidden: User "system:node:n1" cannot delete resource "pods" in API group "" '
        'in the namespace "default"')
    assert forbidden_message(USERS["alice"], "list", "deployments", "apps", None, None) == (
        'deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" '
        "at the cluster scope")
    assert forbidden_message(N1, "update", "nodes", "", None, "n2", "status", "no") == (
        'nodes "n2" is forbidden: User "system:node:n1" cannot update resource "nodes/status" in API group "" '
        "at the cluster scope: no")


@pytest.mark.parametrize(("method", "path", "query", "want"), [
    ("GET", "/api/v1/namespaces/default/pods", {}, ("list", "pods", "", "default", None, None)),
    ("GET", "/api/v1/namespaces/default/pods", {"watch": "true"}, ("watch", "pods", "", "default", None, None)),
    ("GET", "/api/v1/pods", {"watch": "1"}, ("watch", "pods", "", None, None, None)),
    ("GET", "/api/v1/namespaces/default/pods/web", {}, ("get", "pods", "", "default", "web", None)),
    ("PUT", "/api/v1/namespaces/default/pods/web/status", {}, ("update", "pods", "", "default", "web", "status")),
    ("PATCH", "/api/v1/nodes/n1/status", {}, ("patch", "nodes", "", None, "n1", "status")),
    ("POST", "/api/v1/namespaces/default/pods/web/binding", {}, ("create", "pods", "", "default", "web", "binding")),
    ("DELETE", "/api/v1/namespaces/default/pods", {}, ("deletecollection", "pods", "", "default", None, None)),
    ("DELETE", "/api/v1/namespaces/default/pods/web", {}, ("delete", "pods", "", "default", "web", None)),
    ("GET", "/api/v1/namespaces", {}, ("list", "namespaces", "", None, None, None)),
    ("GET", "/api/v1/namespaces/foo", {}, ("get", "namespaces", "", "foo", "foo", None)),
    ("PUT", "/api/v1/namespaces/foo/finalize", {}, ("update", "namespaces", "", "foo", "foo", "finalize")),
    ("POST", "/apis/apps/v1/namespaces/default/deployments", {}, ("create", "deployments", "apps", "default",
                                                                  None, None)),
    ("PUT", "/apis/apps/v1/namespaces/d/deployments/web/scale", {}, ("update", "deployments", "apps", "d", "web",
                                                                     "scale")),
    ("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", {},
     ("get", "leases", "coordination.k8s.io", "kube-node-lease", "n1", None)),
    ("GET", "/api/v1/nodes/n1/proxy/logs/x", {}, ("get", "nodes", "", None, "n1", "proxy")),
])
def test_request_info(method: str, path: str, query: dict[str, str], want: tuple[object, ...]) -> None:
    info = request_info(method, path, query)
    assert (info.verb, info.resource, info.group, info.namespace, info.name, info.subresource) == want


@pytest.mark.parametrize("path", ["/api", "/apis", "/api/v1", "/apis/apps/v1", "/version", "/healthz",
                                  "/openapi/v3/apis/apps/v1", "/metrics"])
def test_non_resource_request_info(path: str) -> None:
    info = request_info("GET", path, {})
    assert info.resource is None and info.verb == "get"


@pytest.mark.parametrize("path", ["/api/v1//namespaces/default/pods", "/api/v1/namespaces//pods",
                                  "/apis/apps/v1//deployments"])
def test_empty_segments_are_kept_as_the_handlers_keep_them(path: str) -> None:
    info = request_info("GET", path, {})
    assert info.resource == "" or info.namespace == "", info


def test_an_empty_namespace_matches_no_namespace_rule() -> None:
    info = request_info("POST", "/apis/coordination.k8s.io/v1/namespaces//leases", {})
    assert (info.verb, info.resource, info.namespace) == ("create", "leases", "")
    assert not authorize(N1, "create", "leases", "", "n1")[0]
    assert not authorize(SCHEDULER, "create", "leases", "", "kube-scheduler")[0]
