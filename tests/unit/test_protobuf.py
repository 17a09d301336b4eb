"""The protobuf decoder against hand-encoded messages (kubectl's layout)."""

from __future__ import annotations

import pytest

from api import errors
from apiserver.protobuf import MAGIC, decode


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: bytes | int | str) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + field(1, field(1, api_version) + field(2, kind)) + field(2, raw) + field(3, b"") + field(4, b"")


def test_namespace_with_labels_and_empty_fields():
    meta = field(1, "dev") + field(2, b"") + field(7, 0) + field(11, field(1, "team") + field(2, "a"))
    obj = decode(envelope("v1", "Namespace", field(1, meta) + field(2, b"") + field(3, field(1, b""))))
    assert obj == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev", "labels": {"team": "a"}},
                   "spec": {}}


def test_deployment_keeps_zero_replicas_and_int_or_string():
    rolling = field(1, field(1, 1) + field(3, "25%")) + field(2, field(1, 0) + field(2, 2))
    spec = field(1, 0) + field(4, field(1, "RollingUpdate") + field(2, rolling))
    obj = decode(envelope("apps/v1", "Deployment", field(1, field(1, "web")) + field(2, spec)))
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["strategy"] == {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 2}}


def test_quantities_in_resources():
    limits = field(1, field(1, "cpu") + field(2, field(1, "500m")))
    container = field(1, "c") + field(2, "busybox") + field(8, limits)
    pod = field(1, field(1, "p")) + field(2, field(2, container))
    obj = decode(envelope("v1", "Pod", pod))
    assert obj["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m"}}


def test_unknown_non_empty_field_is_refused_not_dropped():
    pod = field(1, field(1, "p")) + field(2, field(99, "surprise"))
    with pytest.raises(errors.UnsupportedMediaType) as err:
        decode(envelope("v1", "Pod", pod))
    assert "#99" in str(err.value)


def test_other_kinds_and_garbage():
    with pytest.raises(errors.UnsupportedMediaType):
        decode(envelope("v1", "PersistentVolumeClaim", b""))
    with pytest.raises(errors.BadRequest):
        decode(b"not protobuf")
    with pytest.raises(errors.BadRequest):
        decode(MAGIC + b"\x0a\xff")


def test_configmap_and_secret_as_kubectl_create_sends_them():
    # Bytes captured from `kubectl create configmap a --from-literal=k=v` (v1.36).
    sent = (b'k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12\x1b\n\x11\n\x01a\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00'
            b'\x12\x06\n\x01k\x12\x01v\x1a\x00"\x00')
    assert decode(sent) == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    raw = (field(1, field(1, "s")) + field(2, field(1, "bin") + field(2, b"\x00\xff")) + field(2, field(1, "e"))
           + field(3, "kubernetes.io/tls") + field(5, 1))
    assert decode(envelope("v1", "Secret", raw)) == {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"bin": "AP8=", "e": ""},
        "type": "kubernetes.io/tls", "immutable": True}
    cm = decode(envelope("v1", "ConfigMap", field(1, field(1, "c")) + field(3, field(1, "b") + field(2, b"\x01"))))
    assert cm["binaryData"] == {"b": "AQ=="}
