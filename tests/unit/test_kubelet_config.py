"""The kubelet's pure parts for ConfigMaps and Secrets: env resolution, volume payloads, the
atomic writer (on a tmp dir) and the mountinfo reading behind the tmpfs clean-up."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.config import (
    ConfigMap,
    ConfigMapEnvSource,
    ConfigMapKeySelector,
    ConfigMapVolumeSource,
    EnvFromSource,
    KeyToPath,
    Secret,
    SecretEnvSource,
    SecretKeySelector,
    SecretVolumeSource,
)
from api.core import Container, EnvVar, EnvVarSource, Pod, PodSpec, Volume
from api.meta import ObjectMeta
from kubelet import atomicwriter
from kubelet.atomicwriter import File, WriteError, current, write
from kubelet.configsources import pod_refs
from kubelet.configvolumes import VolumeError, mounts_under, payload
from kubelet.envvars import EnvError, container_env

CM = ConfigMap(metadata=ObjectMeta(name="cfg", namespace="ns"), data={"color": "blue", "1st": "x"},
               binary_data={"blob": base64.b64encode(b"\x00\x01").decode()})
SECRET = Secret(metadata=ObjectMeta(name="sec", namespace="ns"), data={"pw": base64.b64encode(b"s3cret").decode()})


def lookup(kind: str, name: str) -> ConfigMap | Secret | None:
    return {("configmap", "cfg"): CM, ("secret", "sec"): SECRET}.get((kind, name))


def env_of(c: Container, skipped: list[str] | None = None) -> dict[str, str]:
    p = Pod(metadata=ObjectMeta(name="p", namespace="ns"), spec=PodSpec(containers=[c]))
    return container_env(p, c, {"PATH": "/bin", "color": "image"}, pod_ip=None, host_ip=None, allocatable={},
                         service_env={"SVC": "1"}, lookup=lookup, skipped=skipped)


def cm_ref(name: str, key: str, optional: bool | None = None) -> EnvVar:
    return EnvVar(name="V", value_from=EnvVarSource(
        config_map_key_ref=ConfigMapKeySelector(name=name, key=key, optional=optional)))


def test_env_from_keys_refs_and_their_order() -> None:
    skipped: list[str] = []
    c = Container(name="c", env_from=[EnvFromSource(config_map_ref=ConfigMapEnvSource(name="cfg")),
                                      EnvFromSource(prefix="S_", secret_ref=SecretEnvSource(name="sec"))],
                  env=[EnvVar(name="PW", value_from=EnvVarSource(
                           secret_key_ref=SecretKeySelector(name="sec", key="pw"))),
                       EnvVar(name="SVC", value="$(color)-$(PW)")])
    env = env_of(c, skipped)
    assert env == {"PATH": "/bin", "color": "blue", "1st": "x", "blob": "\x00\x01", "S_pw": "s3cret",
                   "PW": "s3cret", "SVC": "blue-s3cret"}  # `1st`: a valid name since Kubernetes 1.34
    assert skipped == []


def test_env_from_skips_names_no_environment_can_hold() -> None:
    # Only an object written around the API server's key validation can have such keys.
    odd = ConfigMap(metadata=ObjectMeta(name="cfg", namespace="ns"), data={"a=b": "1", "\x01": "2", "ok": "3"})
    c = Container(name="c", env_from=[EnvFromSource(config_map_ref=ConfigMapEnvSource(name="cfg"))])
    p = Pod(metadata=ObjectMeta(name="p", namespace="ns"), spec=PodSpec(containers=[c]))
    skipped: list[str] = []
    env = container_env(p, c, {}, pod_ip=None, host_ip=None, allocatable={}, lookup=lambda kind, name: odd,
                        skipped=skipped)
    assert env == {"ok": "3"}
    assert skipped == ["Keys [\x01, a=b] from the EnvFrom configMap ns/cfg were skipped since they are considered "
                       "invalid environment variable names."]


def test_missing_objects_and_keys_fail_unless_optional() -> None:
    with pytest.raises(EnvError, match=r'^configmap "nope" not found$'):
        env_of(Container(name="c", env=[cm_ref("nope", "k")]))
    with pytest.raises(EnvError, match=r"^couldn't find key k in ConfigMap ns/cfg$"):
        env_of(Container(name="c", env=[cm_ref("cfg", "k")]))
    with pytest.raises(EnvError, match=r'^secret "gone" not found$'):
        env_of(Container(name="c", env_from=[EnvFromSource(secret_ref=SecretEnvSource(name="gone"))]))
    quiet = env_of(Container(name="c", env=[cm_ref("nope", "k", True), cm_ref("cfg", "k", True)],
                             env_from=[EnvFromSource(secret_ref=SecretEnvSource(name="gone", optional=True))]))
    assert "V" not in quiet


def vol_cm(**kw: object) -> Volume:
    return Volume(name="v", config_map=ConfigMapVolumeSource(name="cfg", **kw))  # type: ignore[arg-type]


def test_volume_payloads() -> None:
    assert payload(vol_cm(), CM) == {"color": File(b"blue", 0o644), "1st": File(b"x", 0o644),
                                     "blob": File(b"\x00\x01", 0o644)}
    items = [KeyToPath(key="color", path="a/b"), KeyToPath(key="blob", path="c", mode=0o600)]
    assert payload(vol_cm(items=items, default_mode=0o440), CM) == {"a/b": File(b"blue", 0o440),
                                                                    "c": File(b"\x00\x01", 0o600)}
    with pytest.raises(VolumeError, match=r"^configmap references non-existent config key: nope$"):
        payload(vol_cm(items=[KeyToPath(key="nope", path="n")]), CM)
    assert payload(vol_cm(items=[KeyToPath(key="nope", path="n")], optional=True), CM) == {}
    with pytest.raises(VolumeError, match=r'^configmap "cfg" not found$'):
        payload(vol_cm(), None)
    assert payload(vol_cm(optional=True), None) == {}
    secret = Volume(name="s", secret=SecretVolumeSource(secret_name="sec", items=[KeyToPath(key="x", path="x")]))
    with pytest.raises(VolumeError, match=r"^references non-existent secret key: x$"):
        payload(secret, SECRET)


def test_pod_refs_cover_volumes_env_env_from_and_pull_secrets() -> None:
    c = Container(name="c", env=[cm_ref("a", "k")], env_from=[EnvFromSource(secret_ref=SecretEnvSource(name="b"))])
    p = Pod(metadata=ObjectMeta(name="p", namespace="ns"), spec=PodSpec(
        containers=[c], init_containers=[Container(name="i", env=[cm_ref("i", "k")])],
        volumes=[vol_cm(), Volume(name="s", secret=SecretVolumeSource(secret_name="sv"))],
        image_pull_secrets=[{"name": "reg"}]))  # type: ignore[list-item]
    assert pod_refs(p) == {("configmap", "ns", "a"), ("secret", "ns", "b"), ("configmap", "ns", "i"),
                           ("configmap", "ns", "cfg"), ("secret", "ns", "sv"), ("secret", "ns", "reg")}


def test_atomic_writer_layout_update_and_removal(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    assert write(vol, {"a": File(b"1", 0o644), "d/b": File(b"2", 0o600)}, now=1_796_637_600.125)
    first = os.readlink(vol / "..data")
    assert first == "..2026_12_07_10_00_00.125000000"
    assert os.readlink(vol / "a") == "..data/a" and os.readlink(vol / "d") == "..data/d"
    assert (vol / "d" / "b").read_bytes() == b"2" and (vol / "d/b").stat().st_mode & 0o777 == 0o600
    assert not write(vol, {"a": File(b"1", 0o644), "d/b": File(b"2", 0o600)}), "unchanged: nothing written"
    held = (vol / "a").open("rb")  # a subPath bind keeps the old inode, as this open file does
    assert write(vol, {"a": File(b"new", 0o644)}, now=1_796_637_601)
    assert (vol / "a").read_bytes() == b"new"
    assert not (vol / "d").exists() and not (vol / first).exists()
    assert held.read() == b"1"
    held.close()
    assert sorted(os.listdir(vol)) == sorted(["..data", os.readlink(vol / "..data"), "a"])
    assert current(vol) == {"a": File(b"new", 0o644)}
    assert write(vol, {})
    assert sorted(os.listdir(vol)) == sorted(["..data", os.readlink(vol / "..data")])


def test_atomic_writer_refuses_escaping_paths(tmp_path: Path) -> None:
    for bad in ("/abs", "../up", "a/../b", "..data", ""):
        with pytest.raises(WriteError):
            write(tmp_path, {bad: File(b"x", 0o644)})


@settings(max_examples=30, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "c/d", "c/e", "f.txt"]),
                                st.binary(max_size=8), max_size=4), min_size=1, max_size=4))
def test_atomic_writer_always_shows_exactly_the_last_payload(tmp_path_factory: pytest.TempPathFactory,
                                                             versions: list[dict[str, bytes]]) -> None:
    vol = tmp_path_factory.mktemp("vol")
    for i, version in enumerate(versions):
        files = {path: File(data, 0o644) for path, data in version.items()}
        if "c/d" in files and "c" in files:
            continue
        write(vol, files, now=1000.0 + i)
        seen = {}
        for dirpath, dirs, names in os.walk(vol, followlinks=True):  # as a reader of the volume sees it
            dirs[:] = [d for d in dirs if not d.startswith("..")]
            for name in names:
                full = Path(dirpath) / name
                if not name.startswith(".."):
                    seen[str(full.relative_to(vol))] = full.read_bytes()
        assert seen == version
        stamped = [e for e in os.listdir(vol) if e.startswith("..") and e != atomicwriter.DATA]
        assert stamped == [os.readlink(vol / atomicwriter.DATA)]


def test_mounts_under_reads_mountinfo_deepest_first() -> None:
    text = ("36 25 0:32 / /var/lib/kl/pods/u/volumes/sec rw - tmpfs tmpfs rw\n"
            "37 25 0:33 / /var/lib/kl/pods/u/volumes/with\\040space rw - tmpfs tmpfs rw\n"
            "38 36 0:34 / /var/lib/kl/pods/u/volumes/sec/inner rw - tmpfs tmpfs rw\n"
            "39 25 0:35 / /var/lib/kl/pods/u/volumesX rw - tmpfs tmpfs rw\n")
    assert mounts_under(Path("/var/lib/kl/pods/u/volumes"), text) == [
        "/var/lib/kl/pods/u/volumes/sec/inner", "/var/lib/kl/pods/u/volumes/sec",
        "/var/lib/kl/pods/u/volumes/with space"]
