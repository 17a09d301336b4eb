"""Parsing `--registry-mirror` settings, naming images on a docker.io mirror, and finding the
cluster registry that `kubelite up` records in its kubeconfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.images import push_registry, remote_name
from cli.local.registry import from_kubeconfig
from cli.local.up import write_kubeconfig
from runtime.images.mirrors import MirrorError, Mirrors


def test_mirrors_parse_in_order_and_cover_docker_hub_names() -> None:
    m = Mirrors.parse(["docker.io=http://198.51.100.1:5000/", "docker.io=https://mirror.example",
                       "198.51.100.1:5000=http://198.51.100.1:5000"])
    assert m.endpoints("busybox") == ("http://198.51.100.1:5000", "https://mirror.example")
    assert m.endpoints("docker.io/library/busybox:1") == m.endpoints("team/app")
    assert m.endpoints("198.51.100.1:5000/app") == ("http://198.51.100.1:5000",)
    assert m.endpoints("ghcr.io/x/y") == ()
    assert Mirrors.parse(m.settings()) == m
    assert not Mirrors.parse([])


@pytest.mark.parametrize("bad", ["docker.io", "=http://h:1", "docker.io=h:5000", "docker.io=http://h:1/v3/x",
                                 "docker.io=ftp://h"])
def test_bad_mirror_settings_are_refused_with_an_example(bad: str) -> None:
    with pytest.raises(MirrorError, match=r"e\.g\.|host"):
        Mirrors.parse([bad])


def test_remote_names_on_a_docker_io_mirror() -> None:
    assert remote_name("my-node-app", "127.0.0.1:5000") == "127.0.0.1:5000/library/my-node-app:latest"
    assert remote_name("team/app:v2", "127.0.0.1:5000") == "127.0.0.1:5000/team/app:v2"
    assert remote_name("127.0.0.1:5000/app:v1", "127.0.0.1:5000") == "127.0.0.1:5000/app:v1"
    assert remote_name("ghcr.io/x/app", "127.0.0.1:5000") is None
    assert remote_name("localhost:5000/app", "198.51.100.1:5000") is None
    aliases = ("127.0.0.1:5000", "localhost:5000")
    assert remote_name("localhost:5000/app", "198.51.100.1:5000", aliases=aliases) == "198.51.100.1:5000/app:latest"


def test_nodes_resolve_every_name_of_the_cluster_registry() -> None:
    from cli.local.registry import mirror_settings

    multi = Mirrors.parse(mirror_settings("198.51.100.1:5000"))
    for image in ("app", "198.51.100.1:5000/app", "127.0.0.1:5000/app", "localhost:5000/team/app:v1"):
        assert multi.endpoints(image) == ("http://198.51.100.1:5000",), image
    single = Mirrors.parse(mirror_settings("127.0.0.1:5000"))
    assert single.endpoints("localhost:5000/app") == single.endpoints("app") == ("http://127.0.0.1:5000",)


def test_build_finds_the_cluster_registry_in_the_kubeconfig(tmp_path: Path) -> None:
    with_registry, without = tmp_path / "up.kubeconfig", tmp_path / "plain.kubeconfig"
    write_kubeconfig(with_registry, "http://127.0.0.1:6443", registry_address="198.51.100.1:5000")
    write_kubeconfig(without, "http://127.0.0.1:6443")
    assert from_kubeconfig(with_registry) == "198.51.100.1:5000"
    assert from_kubeconfig(without) is None
    target = push_registry(None, str(with_registry))
    assert target is not None and target.url == "http://198.51.100.1:5000" and target.insecure
    assert "localhost:5000" in target.aliases
    assert push_registry(None, str(without)) is None
    explicit = push_registry("10.0.0.10:5000", str(with_registry))  # --push wins; https unless loopback
    assert explicit is not None and explicit.url == "https://10.0.0.10:5000"
    assert push_registry("127.0.0.1:5000", None).url == "http://127.0.0.1:5000"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="does not exist"):
        push_registry(None, str(tmp_path / "missing"))
