"""ConfigMap and Secret validation, stringData folding, the immutable rules and the pod fields
that refer to them, as a client sees them: every bad field listed at once, in Kubernetes' words."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from api.config import MAX_SIZE, ConfigMap, Secret, fold_string_data
from api.core import Pod
from api.defaults import apply_defaults
from api.validation import parse_object, validate
from api.validation_config import check_config_update, config_key_errors


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def causes(model: type, body: dict[str, Any]) -> dict[str, str]:
    obj = parse_object(model, {"metadata": {"name": "x", "namespace": "default"}, **body})
    apply_defaults(obj)
    return {c.field or "": c.message or "" for c in validate(obj)}


def test_configmap_keys_duplicates_and_size_are_all_reported() -> None:
    got = causes(ConfigMap, {"data": {"ok.key_1-a": "v", "bad key": "v", "..hidden": "v", "both": "v",
                                      "big": "x" * MAX_SIZE},
                             "binaryData": {"both": b64("v"), "bin": "not base64!"}})
    assert set(got) == {"data[bad key]", "data[..hidden]", "data[both]", "binaryData[bin]", "[]"}
    assert "regex used for validation is '[-._a-zA-Z0-9]+'" in got["data[bad key]"]
    assert got["data[..hidden]"] == "Invalid value: \"..hidden\": must not start with '..'"
    assert got["data[both]"] == 'Invalid value: "both": duplicate of key present in binaryData'
    assert got["[]"] == f"Too long: must have at most {MAX_SIZE} bytes"
    assert causes(ConfigMap, {"data": {"big": "x" * (MAX_SIZE - 1)}, "binaryData": {"b": b64("y")}}) == {}


def test_secret_string_data_is_folded_into_data_and_not_kept() -> None:
    s = parse_object(Secret, {"metadata": {"name": "s"}, "data": {"a": b64("old"), "b": b64("kept")},
                              "stringData": {"a": "new", "c": "plain"}})
    apply_defaults(s)
    wire = s.to_dict()
    assert "stringData" not in wire
    assert wire["type"] == "Opaque"
    assert {k: base64.b64decode(v).decode() for k, v in wire["data"].items()} == {"a": "new", "b": "kept",
                                                                                     "c": "plain"}


@given(st.dictionaries(st.from_regex(r"[-._a-zA-Z0-9]{1,20}", fullmatch=True), st.text(max_size=50), max_size=5))
def test_folding_round_trips_any_string_data(values: dict[str, str]) -> None:
    s = Secret(string_data=values)
    fold_string_data(s)
    assert s.string_data is None
    assert {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()} == values


def test_secret_types_need_their_keys() -> None:
    assert causes(Secret, {"type": "kubernetes.io/tls", "data": {"tls.crt": b64("c")}}) == {
        "data[tls.key]": "Required value"}
    assert set(causes(Secret, {"type": "kubernetes.io/basic-auth"})) == {"data[username]", "data[password]"}
    assert causes(Secret, {"type": "kubernetes.io/basic-auth", "stringData": {"password": "p"}}) == {}
    assert causes(Secret, {"type": "kubernetes.io/dockerconfigjson"}) == {"data[.dockerconfigjson]": "Required value"}
    bad_json = causes(Secret, {"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{no"}})
    assert bad_json["data[.dockerconfigjson]"].startswith('Invalid value: "<secret contents redacted>": ')
    assert causes(Secret, {"type": "kubernetes.io/dockerconfigjson",
                           "stringData": {".dockerconfigjson": '{"auths": {}}'}}) == {}
    assert causes(Secret, {"type": "kubernetes.io/service-account-token"}) == {
        "metadata.annotations[kubernetes.io/service-account.name]": "Required value"}
    assert causes(Secret, {"type": "example.com/anything", "data": {"k": b64("v")}}) == {}


def test_secret_data_must_be_base64_and_fit() -> None:
    got = causes(Secret, {"data": {"a": "!!!", "b": b64("x" * MAX_SIZE), "bad/key": b64("v")}})
    assert got["data[a]"] == 'Invalid value: "<secret contents redacted>": illegal base64 data at input byte 0'
    assert got["data"] == f"Too long: must have at most {MAX_SIZE} bytes"
    assert "data[bad/key]" in got


def test_immutable_freezes_data_and_itself_and_type_never_changes() -> None:
    old = {"kind": "ConfigMap", "immutable": True, "data": {"a": "1"}, "binaryData": {"b": b64("2")}}
    assert check_config_update(old, dict(old)) == []
    changed = {c.field: c.message for c in check_config_update(
        old, {**old, "immutable": False, "data": {"a": "2"}, "binaryData": {}})}
    msg = "Forbidden: field is immutable when `immutable` is set"
    assert changed == {"immutable": msg, "data": msg, "binaryData": msg}
    # Not immutable: anything may change, and immutable may be set.
    assert check_config_update({"kind": "ConfigMap", "data": {"a": "1"}},
                               {"kind": "ConfigMap", "data": {"a": "9"}, "immutable": True}) == []
    secret_type = check_config_update({"kind": "Secret", "type": "Opaque"},
                                      {"kind": "Secret", "type": "kubernetes.io/tls"})
    assert [(c.field, c.message) for c in secret_type] == [("type", 'Invalid value: "kubernetes.io/tls": '
                                                                    "field is immutable")]


def test_config_keys() -> None:
    assert config_key_errors("a.b-c_D9") == []
    assert config_key_errors(".") == ["must not be '.'"]
    assert len(config_key_errors("x" * 254)) == 1


def test_pod_references_are_checked() -> None:
    got = causes(Pod, {"spec": {
        "containers": [{"name": "c", "image": "busybox", "envFrom": [{"prefix": "x=", "configMapRef": {"name": "a"}},
                                                                      {"configMapRef": {"name": "a"},
                                                                       "secretRef": {"name": "b"}}],
                        "env": [{"name": "E", "valueFrom": {"configMapKeyRef": {"name": "a", "key": "bad key"}}},
                                {"name": "F", "valueFrom": {"secretKeyRef": {"key": "k"}}}],
                        "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
        "volumes": [{"name": "v", "configMap": {"name": "cm", "defaultMode": 0o1000,
                                                "items": [{"key": "a", "path": "/abs"}, {"key": "", "path": "a/../b"},
                                                          {"key": "k", "path": "f", "mode": 0o400}]}},
                    {"name": "s", "secret": {}}]}})
    assert set(got) == {
        "spec.containers[0].envFrom[0].prefix", "spec.containers[0].envFrom[1]",
        "spec.containers[0].env[0].valueFrom.configMapKeyRef.key",
        "spec.containers[0].env[1].valueFrom.secretKeyRef.name",
        "spec.volumes[0].configMap.defaultMode", "spec.volumes[0].configMap.items[0].path",
        "spec.volumes[0].configMap.items[1].key", "spec.volumes[0].configMap.items[1].path",
        "spec.volumes[1].secret.secretName"}
    assert got["spec.volumes[0].configMap.defaultMode"] == ("Invalid value: 512: must be a number between 0 and 0777 "
                                                            "(octal), both inclusive")


def test_volume_default_mode_is_defaulted() -> None:
    volumes = [{"name": "v", "secret": {"secretName": "s"}}]
    p = parse_object(Pod, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}],
                                                                "volumes": volumes}})
    apply_defaults(p)
    assert p.to_dict()["spec"]["volumes"][0]["secret"] == {"secretName": "s", "defaultMode": 0o644}
