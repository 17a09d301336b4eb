"""api.patch: Kubernetes strategic merge patch and the per-kind schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.patch import PatchError, PatchSchema, merge_patch, strategic_merge_patch, strategy_for

FAST = settings(max_examples=100, deadline=None)
DEPLOYMENT = strategy_for("Deployment")
POD = strategy_for("Pod")


def deployment(containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
        },
    }


def containers_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return containers


WEB = {
    "name": "web",
    "image": "nginx:1.25",
    "ports": [{"containerPort": 80, "protocol": "TCP"}],
    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
}
SIDE = {"name": "side", "image": "busybox", "command": ["sleep", "1d"]}


def test_kubectl_client_side_apply_keeps_other_fields() -> None:
    """What kubectl apply sends for an image bump must not lose ports, env or other containers."""
    original = deployment([copy.deepcopy(WEB), copy.deepcopy(SIDE)])
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                    "containers": [{"image": "nginx:1.26", "name": "web"}],
                }
            }
        }
    }
    result = strategic_merge_patch(original, patch, DEPLOYMENT)
    assert containers_of(result) == [{**WEB, "image": "nginx:1.26"}, SIDE]
    assert containers_of(original)[0]["image"] == "nginx:1.25"  # input untouched


def test_brief_example_with_single_container() -> None:
    original = deployment([copy.deepcopy(WEB)])
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [{"image": "nginx:1.26", "name": "web"}],
                }
            }
        }
    }
    assert containers_of(strategic_merge_patch(original, patch, DEPLOYMENT)) == [{**WEB, "image": "nginx:1.26"}]


def test_nested_lists_merge_by_their_own_keys() -> None:
    original = deployment([copy.deepcopy(WEB)])
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "$setElementOrder/env": [{"name": "A"}, {"name": "C"}, {"name": "B"}],
                            "env": [{"name": "A", "value": "9"}, {"name": "C", "value": "3"}],
                            "ports": [{"containerPort": 443}],
                            "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                        }
                    ]
                }
            }
        }
    }
    (web,) = containers_of(strategic_merge_patch(original, patch, DEPLOYMENT))
    assert web["env"] == [
        {"name": "A", "value": "9"},
        {"name": "C", "value": "3"},
        {"name": "B", "value": "2"},
    ]
    assert sorted(p["containerPort"] for p in web["ports"]) == [80, 443]
    assert web["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]


def test_set_element_order_reorders_without_body() -> None:
    original = deployment([copy.deepcopy(WEB), copy.deepcopy(SIDE)])
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "web"}]}}}}
    assert [c["name"] for c in containers_of(strategic_merge_patch(original, patch, DEPLOYMENT))] == [
        "side",
        "web",
    ]


def test_set_element_order_must_cover_the_body() -> None:
    original = deployment([copy.deepcopy(WEB)])
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [{"name": "x", "image": "i"}],
                }
            }
        }
    }
    with pytest.raises(PatchError, match="setElementOrder"):
        strategic_merge_patch(original, patch, DEPLOYMENT)


def test_new_element_goes_where_kubernetes_puts_it() -> None:
    original = deployment([copy.deepcopy(WEB)])
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "new", "image": "x", "env": [{"name": "Z", "value": None}]}]}}
        }
    }
    result = containers_of(strategic_merge_patch(original, patch, DEPLOYMENT))
    # Patch elements the server lacks come before server-only ones, as in apimachinery.
    assert result == [{"name": "new", "image": "x", "env": [{"name": "Z"}]}, WEB]


def test_patch_delete_directive_in_list() -> None:
    original = deployment([copy.deepcopy(WEB), copy.deepcopy(SIDE)])
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "side", "$patch": "delete"},
                        {"name": "web", "env": [{"name": "A", "$patch": "delete"}]},
                    ]
                }
            }
        }
    }
    result = containers_of(strategic_merge_patch(original, patch, DEPLOYMENT))
    assert [c["name"] for c in result] == ["web"]
    assert result[0]["env"] == [{"name": "B", "value": "2"}]


def test_patch_replace_directive_in_list_and_map() -> None:
    original = deployment([copy.deepcopy(WEB), copy.deepcopy(SIDE)])
    patch = {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "i"}]}}}}
    assert containers_of(strategic_merge_patch(original, patch, DEPLOYMENT)) == [{"name": "only", "image": "i"}]
    labels_patch = {"metadata": {"labels": {"$patch": "replace", "new": "1"}}}
    assert strategic_merge_patch(original, labels_patch, DEPLOYMENT)["metadata"]["labels"] == {"new": "1"}


def test_patch_delete_directive_on_map() -> None:
    original = deployment([copy.deepcopy(WEB)])
    result = strategic_merge_patch(original, {"spec": {"strategy": {"$patch": "delete"}}}, DEPLOYMENT)
    assert result["spec"]["strategy"] == {}  # emptied, as apimachinery does
    assert strategic_merge_patch(original, {"$patch": "delete"}, DEPLOYMENT) == {}


def test_null_deletes_and_scalars_replace() -> None:
    original = deployment([copy.deepcopy(WEB)])
    result = strategic_merge_patch(original, {"metadata": {"labels": None}, "spec": {"replicas": 5}}, DEPLOYMENT)
    assert "labels" not in result["metadata"]
    assert result["spec"]["replicas"] == 5
    assert strategic_merge_patch({"a": 1}, {"b": None}, DEPLOYMENT) == {"a": 1}


def test_retain_keys() -> None:
    original = deployment([copy.deepcopy(WEB)])
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert strategic_merge_patch(original, patch, DEPLOYMENT)["spec"]["strategy"] == {"type": "Recreate"}
    bad = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {"maxSurge": 2}}}}
    with pytest.raises(PatchError, match="retainKeys"):
        strategic_merge_patch(original, bad, DEPLOYMENT)


def test_primitive_lists() -> None:
    original = {"metadata": {"name": "x", "finalizers": ["a", "b"]}, "spec": {"podCIDRs": ["10.0.0.0/24"]}}
    node = strategy_for("Node")
    result = strategic_merge_patch(
        original,
        {"metadata": {"finalizers": ["b", "c"], "$deleteFromPrimitiveList/finalizers": ["a"]}},
        node,
    )
    assert sorted(result["metadata"]["finalizers"]) == ["b", "c"]
    result = strategic_merge_patch(original, {"spec": {"podCIDRs": ["fd00::/64"]}}, node)
    assert sorted(result["spec"]["podCIDRs"]) == ["10.0.0.0/24", "fd00::/64"]


def test_lists_without_strategy_are_replaced() -> None:
    pod = {
        "spec": {
            "tolerations": [{"key": "a", "operator": "Exists"}],
            "containers": [{"name": "c", "args": ["x", "y"], "envFrom": [{"configMapRef": {"name": "m"}}]}],
        }
    }
    patch = {"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "c", "args": ["z"], "envFrom": []}]}}
    result = strategic_merge_patch(pod, patch, POD)
    assert result["spec"]["tolerations"] == [{"key": "b"}]
    assert result["spec"]["containers"] == [{"name": "c", "args": ["z"], "envFrom": []}]
    node = {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}
    result = strategic_merge_patch(
        node, {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}}, strategy_for("Node")
    )
    assert result["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]


def test_status_conditions_merge_by_type() -> None:
    node = {
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
        }
    }
    patch = {
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "Hostname", "address": "n1"}],
        }
    }
    result = strategic_merge_patch(node, patch, strategy_for("Node"))
    assert {c["type"]: c["status"] for c in result["status"]["conditions"]} == {
        "Ready": "True",
        "DiskPressure": "False",
    }
    assert len(result["status"]["addresses"]) == 2
    pod = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    result = strategic_merge_patch(pod, {"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}, POD)
    assert {c["type"] for c in result["status"]["conditions"]} == {"Ready", "PodScheduled"}


def test_owner_references_merge_by_uid_for_any_kind() -> None:
    obj = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    patch = {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "controller": True}]}}
    for kind in ("Pod", "ReplicaSet", "Lease", "Event", "Namespace", "SomethingElse"):
        refs = strategic_merge_patch(obj, patch, strategy_for(kind))["metadata"]["ownerReferences"]
        assert {r["uid"]: r for r in refs} == {
            "1": {"uid": "1", "name": "a", "controller": True},
            "2": {"uid": "2", "name": "b"},
        }


def test_replicaset_and_pod_template_schemas() -> None:
    rs = {"spec": {"template": {"spec": {"containers": [copy.deepcopy(WEB)]}}}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "new"}]}}}}
    assert containers_of(strategic_merge_patch(rs, patch, strategy_for("ReplicaSet")))[0]["ports"] == WEB["ports"]
    template = {"spec": {"containers": [copy.deepcopy(WEB)], "volumes": [{"name": "data", "emptyDir": {}}]}}
    result = strategic_merge_patch(
        template,
        {"spec": {"volumes": [{"name": "data", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}},
        strategy_for("PodTemplateSpec"),
    )
    assert result["spec"]["volumes"] == [{"name": "data", "hostPath": {"path": "/x"}}]
    assert result["spec"]["containers"] == [WEB]


@pytest.mark.parametrize(
    "patch",
    [
        {"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}},
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "$patch": "merge"}]}}}},
        {"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}},
        {"spec": {"$patch": "frobnicate"}},
        {"spec": {"$unknownDirective": 1}},
        {"spec": {"$retainKeys": "type"}},
        {"spec": {"$setElementOrder/containers": "web"}},
        {"metadata": {"finalizers": [{"a": 1}]}},
    ],
)
def test_bad_patches_raise(patch: dict[str, Any]) -> None:
    original = deployment([copy.deepcopy(WEB)])
    original["metadata"]["finalizers"] = ["x"]
    before = copy.deepcopy(original)
    with pytest.raises(PatchError):
        strategic_merge_patch(original, patch, DEPLOYMENT)
    assert original == before


def test_patch_must_be_an_object() -> None:
    with pytest.raises(PatchError):
        strategic_merge_patch({}, [1], DEPLOYMENT)


def test_schema_from_spec() -> None:
    schema = PatchSchema.from_spec({"items": {"$mergeKey": "id", "$strategy": "merge,retainKeys", "[]": {"sub": {}}}})
    items = schema.field_schema("items")
    assert items.merge_key == "id" and items.merges and "retainKeys" in items.strategies
    assert items.item_schema().field_schema("sub") == PatchSchema()
    assert schema.field_schema("unknown") == PatchSchema()
    result = strategic_merge_patch({"items": [{"id": 1, "a": 1}]}, {"items": [{"id": 1, "b": 2}]}, schema)
    assert result == {"items": [{"id": 1, "a": 1, "b": 2}]}


def test_unknown_kind_gets_metadata_rules_only() -> None:
    assert strategy_for("ConfigMap") == strategy_for("Whatever")
    assert strategy_for("ConfigMap").field_schema("spec") == PatchSchema()
    assert strategy_for("Deployment").field_schema("metadata") == strategy_for("ConfigMap").field_schema("metadata")


# ---------------------------------------------------------------- properties

keys = st.sampled_from(["a", "b", "c", "name", "image"])
scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.text(alphabet="xy", max_size=2)
no_list_values = st.recursive(scalars, lambda children: st.dictionaries(keys, children, max_size=3), max_leaves=8)
no_list_objects = st.dictionaries(keys, no_list_values, max_size=4)


@FAST
@given(no_list_objects, no_list_objects, st.sampled_from(["Pod", "Deployment", "Node", "Other"]))
def test_without_lists_strategic_equals_merge_patch(target: dict[str, Any], patch: dict[str, Any], kind: str) -> None:
    assert strategic_merge_patch(target, patch, strategy_for(kind)) == merge_patch(target, patch)


@FAST
@given(no_list_objects)
def test_empty_patch_is_identity(target: dict[str, Any]) -> None:
    assert strategic_merge_patch(target, {}, POD) == target


names = st.sampled_from(["web", "side", "init", "log", "proxy"])
container = st.fixed_dictionaries(
    {"name": names},
    optional={
        "image": st.sampled_from(["i1", "i2"]),
        "tty": st.booleans(),
        "workingDir": st.sampled_from(["/", "/a"]),
    },
)
containers = st.lists(container, max_size=4, unique_by=lambda c: c["name"])


@FAST
@given(containers, containers)
def test_merge_by_key_keeps_every_key(original: list[dict[str, Any]], patch: list[dict[str, Any]]) -> None:
    target = {"spec": {"containers": copy.deepcopy(original)}}
    before = copy.deepcopy(target)
    result = strategic_merge_patch(target, {"spec": {"containers": patch}}, POD)["spec"]["containers"]
    assert target == before
    by_name = {c["name"]: c for c in result}
    assert len(by_name) == len(result)
    assert set(by_name) == {c["name"] for c in original} | {c["name"] for c in patch}
    for old in original:
        for field, value in old.items():
            patched = next((p for p in patch if p["name"] == old["name"]), {})
            assert by_name[old["name"]][field] == patched.get(field, value)
    for new in patch:
        assert new.items() <= by_name[new["name"]].items()
    # Patch elements keep the patch's relative order.
    order = [c["name"] for c in result if c["name"] in {p["name"] for p in patch}]
    assert order == [p["name"] for p in patch]


@FAST
@given(containers, containers, st.permutations(["web", "side", "init", "log", "proxy"]))
def test_set_element_order_orders_named_elements(
    original: list[dict[str, Any]], patch: list[dict[str, Any]], permutation: list[str]
) -> None:
    named = {c["name"] for c in patch} | {c["name"] for c in original[: len(original) // 2]}
    order = [{"name": n} for n in permutation if n in named]
    body = sorted(patch, key=lambda c: permutation.index(c["name"]))
    result = strategic_merge_patch(
        {"spec": {"containers": original}},
        {"spec": {"$setElementOrder/containers": order, "containers": body}},
        POD,
    )["spec"]["containers"]
    result_names = [c["name"] for c in result]
    assert set(result_names) == {c["name"] for c in original} | {c["name"] for c in patch}
    assert [n for n in result_names if n in named] == [o["name"] for o in order]


@FAST
@given(
    st.lists(st.sampled_from("abcde"), unique=True),
    st.lists(st.sampled_from("abcde"), unique=True),
    st.lists(st.sampled_from("abcde"), unique=True),
)
def test_primitive_merge_is_union_minus_deletions(original: list[str], added: list[str], removed: list[str]) -> None:
    result = strategic_merge_patch(
        {"metadata": {"finalizers": original}},
        {"metadata": {"finalizers": added, "$deleteFromPrimitiveList/finalizers": removed}},
        strategy_for("Pod"),
    )["metadata"]["finalizers"]
    assert len(result) == len(set(result))
    assert set(result) == (set(original) - set(removed)) | set(added)


@FAST
@given(containers, st.lists(names, unique=True))
def test_delete_directive_removes_exactly_those(original: list[dict[str, Any]], doomed: list[str]) -> None:
    patch = {"spec": {"containers": [{"name": n, "$patch": "delete"} for n in doomed]}}
    result = strategic_merge_patch({"spec": {"containers": original}}, patch, POD)["spec"]["containers"]
    assert result == [c for c in original if c["name"] not in doomed]


def _names(obj: dict[str, Any]) -> list[str]:
    return [c["name"] for c in obj["spec"]["containers"]]


def test_set_element_order_keeps_server_only_elements_in_place() -> None:
    pod = {"spec": {"containers": [{"name": n} for n in ["app", "cache", "extra", "proxy", "log"]]}}
    order = [{"name": n} for n in ["log", "app", "proxy", "cache"]]
    result = strategic_merge_patch(pod, {"spec": {"$setElementOrder/containers": order}}, POD)
    # apimachinery's merge: a server-only element goes before the next ordered element
    # when the server had it earlier; "extra" (index 2) precedes "log" (index 4).
    assert _names(result) == ["extra", "log", "app", "proxy", "cache"]


def test_set_element_order_with_delete_and_add_matches_apimachinery() -> None:
    pod = {"spec": {"containers": [{"name": "old"}, {"name": "web", "image": "w"}, {"name": "extra"}]}}
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "new"}],
            "containers": [{"name": "new", "image": "n"}, {"name": "old", "$patch": "delete"}],
        }
    }
    # apimachinery reads the server order after its in-place delete and append, so the
    # added element takes the freed slot and the server-only "extra" comes before it.
    assert _names(strategic_merge_patch(pod, patch, POD)) == ["web", "extra", "new"]
