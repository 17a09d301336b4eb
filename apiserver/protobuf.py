"""Just enough of Kubernetes' protobuf encoding to accept what kubectl's generators send.

kubectl >= 1.32 sends `kubectl create namespace`, `create deployment`, `create service`,
`create configmap`, `create secret`, `run`
and `auth whoami/can-i` bodies as
`application/vnd.kubernetes.protobuf`: the 4-byte magic `k8s\\0`, then a `runtime.Unknown`
message whose `raw` field holds the object in the protobuf form of k8s.io/api. This module
decodes those objects into the JSON form the rest of the server speaks, field by field
from the tables below (field numbers from k8s.io/api's generated.proto files).

Kubernetes' messages are proto2: kubectl writes empty strings and zero numbers as present
fields. They are dropped here, as Go's JSON encoding drops them (`omitempty`), except where
a zero means something (`replicas: 0`). A non-empty field missing from the tables is refused
with 415, so nothing a client sent is silently lost.
"""

from __future__ import annotations

import base64
from typing import Any

from api import errors

MAGIC = b"k8s\x00"

# A field is (json name, kind, repeated); kind is a scalar name or a nested table.
Table = dict[int, tuple[str, Any, bool]]

STRING, INT, BOOL, MAP, QUANTITY_MAP, INT_OR_STRING = "string", "int", "bool", "map", "qmap", "intstr"
BYTES_MAP = "bmap"  # map<string, bytes>: base64 values in JSON, as Go encodes []byte
KEEP_ZERO = "int!"  # an int whose zero is meaningful

OBJECT_META: Table = {
    1: ("name", STRING, False), 2: ("generateName", STRING, False), 3: ("namespace", STRING, False),
    11: ("labels", MAP, False), 12: ("annotations", MAP, False), 14: ("finalizers", STRING, True),
}
LABEL_SELECTOR: Table = {
    1: ("matchLabels", MAP, False),
    2: ("matchExpressions", {1: ("key", STRING, False), 2: ("operator", STRING, False),
                             3: ("values", STRING, True)}, True),
}
CONTAINER: Table = {
    1: ("name", STRING, False), 2: ("image", STRING, False), 3: ("command", STRING, True),
    4: ("args", STRING, True), 5: ("workingDir", STRING, False),
    6: ("ports", {1: ("name", STRING, False), 2: ("hostPort", INT, False), 3: ("containerPort", INT, False),
                  4: ("protocol", STRING, False), 5: ("hostIP", STRING, False)}, True),
    7: ("env", {1: ("name", STRING, False), 2: ("value", STRING, False)}, True),
    8: ("resources", {1: ("limits", QUANTITY_MAP, False), 2: ("requests", QUANTITY_MAP, False)}, False),
    13: ("terminationMessagePath", STRING, False), 14: ("imagePullPolicy", STRING, False),
    16: ("stdin", BOOL, False), 17: ("stdinOnce", BOOL, False), 18: ("tty", BOOL, False),
    20: ("terminationMessagePolicy", STRING, False),
}
POD_SPEC: Table = {
    2: ("containers", CONTAINER, True), 3: ("restartPolicy", STRING, False),
    4: ("terminationGracePeriodSeconds", INT, False), 5: ("activeDeadlineSeconds", INT, False),
    6: ("dnsPolicy", STRING, False), 7: ("nodeSelector", MAP, False), 8: ("serviceAccountName", STRING, False),
    10: ("nodeName", STRING, False), 11: ("hostNetwork", BOOL, False), 12: ("hostPID", BOOL, False),
    13: ("hostIPC", BOOL, False), 20: ("initContainers", CONTAINER, True),
}
POD_TEMPLATE: Table = {1: ("metadata", OBJECT_META, False), 2: ("spec", POD_SPEC, False)}
DEPLOYMENT_SPEC: Table = {
    1: ("replicas", KEEP_ZERO, False), 2: ("selector", LABEL_SELECTOR, False), 3: ("template", POD_TEMPLATE, False),
    4: ("strategy", {1: ("type", STRING, False),
                     2: ("rollingUpdate", {1: ("maxUnavailable", INT_OR_STRING, False),
                                           2: ("maxSurge", INT_OR_STRING, False)}, False)}, False),
    5: ("minReadySeconds", INT, False), 6: ("revisionHistoryLimit", INT, False), 7: ("paused", BOOL, False),
    9: ("progressDeadlineSeconds", INT, False),
}
SERVICE_SPEC: Table = {  # `kubectl create service clusterip|nodeport|externalname|loadbalancer`
    1: ("ports", {1: ("name", STRING, False), 2: ("protocol", STRING, False), 3: ("port", INT, False),
                  4: ("targetPort", INT_OR_STRING, False), 5: ("nodePort", INT, False),
                  6: ("appProtocol", STRING, False)}, True),
    2: ("selector", MAP, False), 3: ("clusterIP", STRING, False), 4: ("type", STRING, False),
    5: ("externalIPs", STRING, True), 7: ("sessionAffinity", STRING, False), 8: ("loadBalancerIP", STRING, False),
    9: ("loadBalancerSourceRanges", STRING, True), 10: ("externalName", STRING, False),
    11: ("externalTrafficPolicy", STRING, False), 12: ("healthCheckNodePort", INT, False),
    13: ("publishNotReadyAddresses", BOOL, False),
    14: ("sessionAffinityConfig", {1: ("clientIP", {1: ("timeoutSeconds", INT, False)}, False)}, False),
    17: ("ipFamilyPolicy", STRING, False), 18: ("clusterIPs", STRING, True), 19: ("ipFamilies", STRING, True),
    21: ("loadBalancerClass", STRING, False), 22: ("internalTrafficPolicy", STRING, False),
}
SELF_SUBJECT_ACCESS_REVIEW_SPEC: Table = {  # what `kubectl auth can-i` asks
    1: ("resourceAttributes", {1: ("namespace", STRING, False), 2: ("verb", STRING, False),
                               3: ("group", STRING, False), 4: ("version", STRING, False),
                               5: ("resource", STRING, False), 6: ("subresource", STRING, False),
                               7: ("name", STRING, False)}, False),
    2: ("nonResourceAttributes", {1: ("path", STRING, False), 2: ("verb", STRING, False)}, False),
}
# Status (field 3; a SelfSubjectReview's 2) is server-owned on create: it is read and dropped.
KINDS: dict[str, Table] = {
    "Namespace": {1: ("metadata", OBJECT_META, False), 2: ("spec", {1: ("finalizers", STRING, True)}, False),
                  3: ("status", None, False)},
    "Pod": {1: ("metadata", OBJECT_META, False), 2: ("spec", POD_SPEC, False), 3: ("status", None, False)},
    "Deployment": {1: ("metadata", OBJECT_META, False), 2: ("spec", DEPLOYMENT_SPEC, False),
                   3: ("status", None, False)},
    "Service": {1: ("metadata", OBJECT_META, False), 2: ("spec", SERVICE_SPEC, False), 3: ("status", None, False)},
    # `kubectl create configmap` and `create secret generic|tls|docker-registry`
    "ConfigMap": {1: ("metadata", OBJECT_META, False), 2: ("data", MAP, False), 3: ("binaryData", BYTES_MAP, False),
                  4: ("immutable", BOOL, False)},
    "Secret": {1: ("metadata", OBJECT_META, False), 2: ("data", BYTES_MAP, False), 3: ("type", STRING, False),
               4: ("stringData", MAP, False), 5: ("immutable", BOOL, False)},
    "SelfSubjectAccessReview": {1: ("metadata", OBJECT_META, False),
                                2: ("spec", SELF_SUBJECT_ACCESS_REVIEW_SPEC, False), 3: ("status", None, False)},
    "SelfSubjectReview": {1: ("metadata", OBJECT_META, False), 2: ("status", None, False)},
}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def varint(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= len(self.data):
                raise ValueError("truncated varint")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    def fields(self) -> list[tuple[int, int, int | bytes]]:
        out: list[tuple[int, int, int | bytes]] = []
        while self.pos < len(self.data):
            key = self.varint()
            number, wire = key >> 3, key & 7
            if wire == 0:
                out.append((number, wire, self.varint()))
            elif wire == 2:
                size = self.varint()
                chunk = self.data[self.pos:self.pos + size]
                if len(chunk) != size:
                    raise ValueError("truncated field")
                self.pos += size
                out.append((number, wire, chunk))
            else:
                raise ValueError(f"unsupported wire type {wire}")
        return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode(data: bytes, table: Table, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, _wire, value in _Reader(data).fields():
        entry = table.get(number)
        if entry is None:
            if value in (0, b""):
                continue  # an empty field we do not model: what Go's JSON would omit too
            raise errors.UnsupportedMediaType(
                f"protobuf field {path}#{number} is not understood by kubelite; send JSON or YAML instead "
                "(e.g. kubectl create -f FILE)")
        name, kind, repeated = entry
        decoded = _value(value, kind, f"{path}.{name}")
        if decoded is None:
            continue
        if repeated:
            out.setdefault(name, []).append(decoded)
        elif kind in (MAP, QUANTITY_MAP, BYTES_MAP):
            out.setdefault(name, {}).update(decoded)
        else:
            out[name] = decoded
    return out


def _value(value: int | bytes, kind: Any, path: str) -> Any:
    if kind is None:
        return None
    if kind == KEEP_ZERO:
        return _signed(int(value)) if isinstance(value, int) else None
    if kind == INT:
        return _signed(value) or None if isinstance(value, int) else None
    if kind == BOOL:
        return True if value else None
    if not isinstance(value, bytes):
        raise errors.BadRequest(f"protobuf field {path} has the wrong wire type")
    if kind == STRING:
        return value.decode() or None
    if kind in (MAP, QUANTITY_MAP, BYTES_MAP):
        entry = {n: v for n, _, v in _Reader(value).fields()}
        key = bytes(entry.get(1, b"")).decode()
        raw = entry.get(2, b"")
        if kind == BYTES_MAP:
            return {key: base64.b64encode(bytes(raw)).decode()}
        if kind == QUANTITY_MAP:
            raw = {n: v for n, _, v in _Reader(bytes(raw)).fields()}.get(1, b"")
        return {key: bytes(raw).decode()}
    if kind == INT_OR_STRING:
        fields = {n: v for n, _, v in _Reader(value).fields()}
        if fields.get(1, 0) == 1:
            return bytes(fields.get(3, b"")).decode()
        return _signed(int(fields.get(2, 0)))
    decoded = _decode(value, kind, path)
    return decoded or ({} if path.endswith((".metadata", ".spec", ".template")) else None)


def decode(body: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf request body as the equivalent JSON object."""
    if not body.startswith(MAGIC):
        raise errors.BadRequest("a protobuf body must start with the Kubernetes magic number k8s\\0")
    try:
        envelope = {n: v for n, _, v in _Reader(body[len(MAGIC):]).fields()}
        type_meta = {n: v for n, _, v in _Reader(bytes(envelope.get(1, b""))).fields()}
        api_version = bytes(type_meta.get(1, b"")).decode()
        kind = bytes(type_meta.get(2, b"")).decode()
        table = KINDS.get(kind)
        if table is None:
            raise errors.UnsupportedMediaType(
                f"kubelite decodes protobuf only for {', '.join(KINDS)}; send {kind or 'this object'} as JSON or YAML")
        obj = _decode(bytes(envelope.get(2, b"")), table, kind)
    except ValueError as err:
        raise errors.BadRequest(f"the protobuf body could not be decoded: {err}") from err
    return {"apiVersion": api_version, "kind": kind, **obj}
