"""Authorization: who may do what, as one pure function of the request's attributes.

    authorize(user, verb, resource, namespace, name, subresource, obj_node_name) -> (allowed, reason)

Rules (everything not listed is denied; deny is the default, never an afterthought):

* `system:masters` (the admin, the API server's kubelet client): everything.
* A node, `system:node:NAME` *and* in group `system:nodes` (both, as Kubernetes' Node
  authorizer requires):
  - get/list/watch pods, nodes, namespaces, leases, events, services, endpoints, endpointslices;
  - get/list/watch a ConfigMap or Secret named (for list/watch: by a `metadata.name` field
    selector) by a pod bound to it (`node_uses`, which the caller looks up in the stored pods,
    as Kubernetes' Node authorizer keeps its graph), never a whole namespace's;
  - create/update/patch/delete its own Node, get/update/patch its own `nodes/status`;
  - create/get/update/patch/delete its own Lease `kube-node-lease/NAME`;
  - update/patch `pods/status` and delete pods bound to it (`obj_node_name == NAME`, the
    stored pod's `spec.nodeName`, which the caller looks up: a request body cannot claim it);
  - create/update/patch events.
* The scheduler (`system:kube-scheduler`): read pods, nodes, namespaces; create
  `pods/binding`; update/patch `pods/status`; create/update/patch events; read and
  create/update/patch leases in kube-system; create the namespace kube-system (it makes sure
  its lease namespace exists and expects AlreadyExists, not Forbidden).
* The controller-manager (`system:kube-controller-manager`): read everything it watches
  (pods, replicasets, deployments, nodes, namespaces, leases, events, services, endpoints,
  endpointslices, configmaps, secrets); full write on pods, replicasets, deployments (and their
  status/scale), endpoints and endpointslices; delete services, configmaps and secrets
  (namespace controller); update/patch/delete nodes and their
  status (node lifecycle, IPAM); update/patch/delete namespaces, their status and
  `finalize` (namespace controller); events; leases: create/update/patch/delete in
  kube-system (its election), update/patch/delete anywhere (the garbage collector removes
  a deleted node's lease, the namespace controller empties namespaces); create kube-system.
* The cluster DNS (`system:kube-dns`): read services, endpointslices, pods, namespaces; create,
  get, update, patch its own Service, Endpoints and EndpointSlices (`kube-dns*`) in kube-system.
* Anyone authenticated: GET the discovery and health paths (`authorize_path`), and create
  SelfSubjectReviews and SelfSubjectAccessReviews (questions about themselves).

A `name` for `create` is the name in the request body (the caller decodes it); a create
with only `generateName` has no name and matches no rule that needs one.
"""

from __future__ import annotations

from apiserver.auth.pki import (
    CONTROLLER_MANAGER,
    DNS,
    MASTERS_GROUP,
    NODE_USER_PREFIX,
    NODES_GROUP,
    SCHEDULER,
    Identity,
)

READ = frozenset({"get", "list", "watch"})
# `kubectl auth whoami` and `kubectl auth can-i`: every authenticated user may ask about themselves.
SELF_REVIEWS = frozenset({"selfsubjectreviews", "selfsubjectaccessreviews"})
WRITE = frozenset({"create", "update", "patch", "delete", "deletecollection"})
VERBS = READ | WRITE
UPDATE = frozenset({"update", "patch"})

NODE_LEASE_NAMESPACE = "kube-node-lease"
# Where a node asks for its kubelet's serving certificate (kubeletcert.py).
KUBELET_SERVING_PATH = "/kubelite/v1/kubelet-serving-certificate"
SYSTEM_NAMESPACE = "kube-system"

NODE_READABLE = frozenset({"pods", "nodes", "namespaces", "leases", "events", "services", "endpoints",
                           "endpointslices"})
# What a node reads only when one of its pods names the object (`node_uses`).
NODE_REFERENCED = frozenset({"configmaps", "secrets"})
SCHEDULER_READABLE = frozenset({"pods", "nodes", "namespaces"})
CONTROLLER_READABLE = frozenset({"pods", "replicasets", "deployments", "nodes", "namespaces", "leases", "events",
                                 "services", "endpoints", "endpointslices", "configmaps", "secrets"})
DNS_READABLE = frozenset({"services", "endpointslices", "pods", "namespaces"})
# The cluster DNS keeps its own Service (kube-system/kube-dns) and the slice that points at it.
DNS_SERVICE = "kube-dns"

# Paths every authenticated user may GET (Kubernetes' system:discovery and health checks).
DISCOVERY_PATHS = ("/api", "/apis", "/version", "/openapi", "/healthz", "/livez", "/readyz")

Decision = tuple[bool, str]
DENY: Decision = (False, "")
ALLOW: Decision = (True, "")


def node_name_of(user: Identity) -> str | None:
    """NAME for a node identity (`system:node:NAME` in group `system:nodes`), else None."""
    if user.user.startswith(NODE_USER_PREFIX) and NODES_GROUP in user.groups:
        name = user.user[len(NODE_USER_PREFIX):]
        return name or None
    return None


def authorize(user: Identity, verb: str, resource: str, namespace: str | None, name: str | None,
              subresource: str | None = None, obj_node_name: str | None = None, *,
              node_uses: bool = False) -> Decision:
    """Whether `user` may `verb` the `resource[/subresource]` named `name` in `namespace`.

    `obj_node_name` is the `spec.nodeName` of the stored pod a node writes to (None if the
    pod does not exist or the request is not about one). `node_uses`: a pod bound to the
    requesting node names this ConfigMap or Secret.
    """
    if MASTERS_GROUP in user.groups:
        return ALLOW
    if verb == "create" and resource in SELF_REVIEWS and subresource is None:
        return ALLOW  # a question about oneself (auth/reviews.py)
    node = node_name_of(user)
    if node is not None:
        return _node(node, verb, resource, namespace, name, subresource, obj_node_name, node_uses)
    if user.user == SCHEDULER.user:
        return _scheduler(verb, resource, namespace, name, subresource)
    if user.user == CONTROLLER_MANAGER.user:
        return _controller_manager(verb, resource, namespace, name, subresource)
    if user.user == DNS.user:
        return _dns(verb, resource, namespace, name, subresource)
    return DENY


def authorize_path(user: Identity, verb: str, path: str) -> Decision:
    """Requests outside any resource: discovery and health for everyone, a node's serving
    certificate for nodes, the rest for masters."""
    if MASTERS_GROUP in user.groups:
        return ALLOW
    if verb == "get" and any(path == p or path.startswith(p + "/") for p in DISCOVERY_PATHS):
        return ALLOW
    if verb == "create" and path == KUBELET_SERVING_PATH and node_name_of(user) is not None:
        return ALLOW
    return DENY


def _node(node: str, verb: str, resource: str, namespace: str | None, name: str | None,
          sub: str | None, obj_node_name: str | None, node_uses: bool = False) -> Decision:
    if sub is None and verb in READ and resource in NODE_READABLE:
        return ALLOW
    if sub is None and verb in READ and resource in NODE_REFERENCED:
        if name and node_uses:
            return ALLOW
        return False, f"no relationship found between node '{node}' and this object"
    if resource == "nodes":
        own = name == node
        if sub is None and verb in {"create", "update", "patch", "delete"} and own:
            return ALLOW
        if sub == "status" and verb in UPDATE | {"get"} and own:
            return ALLOW
        return False, f'node "{node}" may only modify its own Node object'
    if resource == "leases" and sub is None and verb in {"create", "get", "update", "patch", "delete"}:
        if namespace == NODE_LEASE_NAMESPACE and name == node:
            return ALLOW
        return False, f'node "{node}" may only write its own Lease in namespace "{NODE_LEASE_NAMESPACE}"'
    if resource == "pods" and ((sub == "status" and verb in UPDATE | {"get"}) or (sub is None and verb == "delete")):
        if name and obj_node_name == node:
            return ALLOW
        return False, f'node "{node}" may only update the status of, or delete, pods bound to it'
    if resource == "events" and sub is None and verb in {"create", "update", "patch"}:
        return ALLOW
    return DENY


def _scheduler(verb: str, resource: str, namespace: str | None, name: str | None, sub: str | None) -> Decision:
    if sub is None and verb in READ and resource in SCHEDULER_READABLE:
        return ALLOW
    if resource == "pods" and sub == "binding" and verb == "create":
        return ALLOW
    if resource == "pods" and sub == "status" and verb in UPDATE | {"get"}:
        return ALLOW
    if resource == "events" and sub is None and verb in {"create", "update", "patch"}:
        return ALLOW
    if (resource == "leases" and sub is None and namespace == SYSTEM_NAMESPACE
            and verb in READ | {"create", "update", "patch"}):
        return ALLOW
    if resource == "namespaces" and sub is None and verb == "create" and name == SYSTEM_NAMESPACE:
        return ALLOW
    return DENY


def _controller_manager(verb: str, resource: str, namespace: str | None, name: str | None,
                        sub: str | None) -> Decision:
    if sub is None and verb in READ and resource in CONTROLLER_READABLE:
        return ALLOW
    if resource in {"endpoints", "endpointslices"} and sub is None and verb in WRITE:
        return ALLOW  # the EndpointSlice controller and its Endpoints mirror
    if resource in {"services", "configmaps", "secrets"} and sub is None and verb in {"delete", "deletecollection"}:
        return ALLOW  # the namespace controller empties namespaces
    if resource in {"pods", "replicasets", "deployments"}:
        if sub is None and verb in WRITE:
            return ALLOW
        if (sub == "status" or (sub == "scale" and resource != "pods")) and verb in UPDATE | {"get"}:
            return ALLOW
        return DENY
    if resource == "nodes":
        if sub is None and verb in {"update", "patch", "delete"}:
            return ALLOW
        if sub == "status" and verb in UPDATE | {"get"}:
            return ALLOW
        return DENY
    if resource == "namespaces":
        if sub is None and verb in {"update", "patch", "delete"}:
            return ALLOW
        if sub is None and verb == "create" and name == SYSTEM_NAMESPACE:
            return ALLOW
        if sub == "status" and verb in UPDATE | {"get"}:
            return ALLOW
        if sub == "finalize" and verb == "update":
            return ALLOW
        return DENY
    if resource == "events" and sub is None and verb in WRITE:
        return ALLOW
    if resource == "leases" and sub is None:
        if verb in {"update", "patch", "delete", "deletecollection"}:
            return ALLOW
        if verb == "create" and namespace == SYSTEM_NAMESPACE:
            return ALLOW
    return DENY


def _dns(verb: str, resource: str, namespace: str | None, name: str | None, sub: str | None) -> Decision:
    if sub is None and verb in READ and resource in DNS_READABLE:
        return ALLOW
    if (sub is None and namespace == SYSTEM_NAMESPACE and resource in {"services", "endpointslices", "endpoints"}
            and verb in {"create", "get", "update", "patch"} and (name or "").startswith(DNS_SERVICE)):
        return ALLOW
    return DENY


def forbidden_message(user: Identity, verb: str, resource: str, group: str, namespace: str | None,
                      name: str | None, subresource: str | None = None, reason: str = "") -> str:
    """Kubernetes' wording: `pods "x" is forbidden: User "u" cannot delete resource "pods" in
    API group "" in the namespace "default"[: reason]`."""
    qualified = f"{resource}.{group}" if group else resource
    full = f"{resource}/{subresource}" if subresource else resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    why = f'User "{user.user}" cannot {verb} resource "{full}" in API group "{group}" {scope}'
    if reason:
        why += f": {reason}"
    return f'{qualified} "{name}" is forbidden: {why}' if name else f"{qualified} is forbidden: {why}"


def forbidden_path_message(user: Identity, verb: str, path: str) -> str:
    return f'forbidden: User "{user.user}" cannot {verb} path "{path}"'
