"""The image store on the real file system: import, stacking with whiteouts, removal, GC, CLI."""

from __future__ import annotations

import asyncio
import os
import tarfile
from pathlib import Path

import pytest

from cli.main import main as kubelite
from runtime.build.step_runner import UnshareStepRunner
from runtime.images.busybox import import_busybox
from runtime.images.config import ImageConfig
from runtime.images.importer import RootfsImportError, import_rootfs
from runtime.images.oci import OCI_LAYER_TAR, Descriptor
from runtime.images.store import ImageNotFound, ImageStore
from tests.node.test_images_fixtures import kltest_dir, make_tar, member, needs_root, store

__all__ = ["kltest_dir", "store"]

pytestmark = [pytest.mark.root, needs_root]


def add_tar_layer(store: ImageStore, data: bytes) -> Descriptor:
    digest = store.layout.put_bytes(data)
    return Descriptor(OCI_LAYER_TAR, digest, len(data))


async def test_busybox_image_is_reproducible_and_complete(store: ImageStore) -> None:
    first = import_busybox(store)
    assert import_busybox(store) == first  # same package, same digest
    rootfs = await store.rootfs("busybox")
    (top,) = rootfs.lowerdirs
    assert os.readlink(top / "bin/sh") == "busybox"
    assert (top / "etc/passwd").read_text().startswith("root:x:0:0:")
    assert os.stat(top / "tmp").st_mode & 0o7777 == 0o1777
    assert rootfs.config.cmd == ("sh",)


async def test_whiteouts_and_opaque_dirs_hide_lower_files_in_the_overlay(store: ImageStore, kltest_dir: Path) -> None:
    """A layer stack where the top layer deletes a file and replaces a directory, viewed through overlayfs."""
    import_busybox(store)
    base = store.manifest(store.resolve("busybox"))
    lower = make_tar(
        [
            member("data", tarfile.DIRTYPE),
            (member("data/old1"), b"1"),
            (member("data/old2"), b"2"),
            (member("keep"), b"k"),
            (member("gone"), b"g"),
        ]
    )
    upper = make_tar([member(".wh.gone"), member("data/.wh..wh..opq"), (member("data/new"), b"n")])
    layers = [*base.layers, add_tar_layer(store, lower), add_tar_layer(store, upper)]
    config = store.config(store.resolve("busybox"))
    store.commit_image(config=ImageConfig(env=config.env), layers=layers, tags=["kltest/wh:1"])
    rootfs = await store.rootfs("kltest/wh:1")
    assert len(rootfs.lowerdirs) == 3
    out = bytearray()
    code = await UnshareStepRunner(out.extend).run(
        lowerdirs=rootfs.lowerdirs,
        upperdir=kltest_dir / "upper",
        argv=["sh", "-c", "ls /data; cat /keep; test -e /gone || echo no-gone"],
        env=rootfs.config.env_dict,
        workdir="/",
        user="",
    )
    assert (code, out.decode()) == (0, "new\nkno-gone\n")


async def test_import_tarball_and_directory(store: ImageStore, kltest_dir: Path) -> None:
    tarball = kltest_dir / "rootfs.tar"
    tarball.write_bytes(make_tar([member("bin", tarfile.DIRTYPE), (member("bin/tool", mode=0o755), b"#!x")]))
    digest = import_rootfs(store, tarball, tags=["kltest/tar:1"])
    rootfs = await store.rootfs("kltest/tar:1")
    assert (rootfs.lowerdirs[0] / "bin/tool").read_bytes() == b"#!x"
    assert store.resolve("kltest/tar:1") == digest

    evil = kltest_dir / "evil.tar"
    evil.write_bytes(make_tar([(member("../escaped"), b"x")]))
    with pytest.raises(RootfsImportError, match=r"member '\.\./escaped' escapes the layer directory"):
        import_rootfs(store, evil, tags=["kltest/evil:1"])
    assert not (kltest_dir / "escaped").exists()
    assert list((store.root / "tmp").iterdir()) == []

    src = kltest_dir / "dir"
    (src / "etc").mkdir(parents=True)
    (src / "etc/motd").write_text("hi")
    import_rootfs(store, src, tags=["kltest/dir:1"])
    assert ((await store.rootfs("kltest/dir:1")).lowerdirs[0] / "etc/motd").read_text() == "hi"


async def test_tampered_blob_fails_diff_id_check(store: ImageStore) -> None:
    layer = add_tar_layer(store, make_tar([(member("f"), b"x")]))
    other = add_tar_layer(store, make_tar([(member("f"), b"y")]))
    config = ImageConfig(diff_ids=(other.digest,))  # claims the other layer's content
    store.commit_image(config=config, layers=[layer], tags=["kltest/liar:1"])
    with pytest.raises(Exception, match="does not match the config's diff_id"):
        await store.rootfs("kltest/liar:1")
    assert not store.layer_dir(layer.digest).exists()


async def test_tag_remove_and_gc(store: ImageStore) -> None:
    digest = import_busybox(store)
    store.tag("busybox:latest", "kltest/bb:other")
    rootfs = await store.rootfs("busybox")
    assert store.untag("busybox:latest") == ["busybox:latest"]
    assert store.gc().blobs_removed == 0  # still tagged as kltest/bb:other
    assert rootfs.lowerdirs[0].is_dir()
    assert store.untag(digest) == ["kltest/bb:other"]
    with pytest.raises(ImageNotFound):
        store.resolve("busybox")
    result = store.gc()
    assert (result.blobs_removed, result.layers_removed) == (3, 1)  # manifest, config, layer
    assert not rootfs.lowerdirs[0].exists()
    assert store.layout.all_blobs() == []


async def test_leased_image_survives_untag_and_gc(store: ImageStore) -> None:
    import_busybox(store)
    rootfs = await store.rootfs("busybox", lease="kltest-container-1")
    store.untag("busybox:latest")
    assert store.gc().layers_removed == 0
    assert (rootfs.lowerdirs[0] / "bin/busybox").is_file()
    assert store.leases() == {"kltest-container-1": rootfs.manifest_digest}
    store.release("kltest-container-1")
    assert store.gc().layers_removed == 1
    loose = store.layout.put_bytes(b"kltest loose blob")
    store.lease("kltest-build", None, blobs=[loose])
    assert store.gc().blobs_removed == 0 and store.layout.has_blob(loose)
    store.release("kltest-build")
    assert store.gc().blobs_removed == 1
    with pytest.raises(Exception, match="invalid lease name"):
        store.lease("../x", rootfs.manifest_digest)


def test_cli_import_build_ls_inspect_rm(kltest_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = ["--root", str(kltest_dir / "state")]
    assert kubelite(["image", "import", "--busybox", *root]) == 0
    ctx = kltest_dir / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM busybox\nARG X\nRUN echo "$X" > /x\nCMD ["cat", "/x"]\n')
    assert kubelite(["build", "-t", "kltest/cli:1", "--build-arg", "X=42", *root, str(ctx)]) == 0
    out = capsys.readouterr().out
    assert "Step 3/4 : RUN" in out and "Successfully tagged kltest/cli:1" in out
    assert kubelite(["image", "ls", *root]) == 0
    listing = capsys.readouterr().out
    assert "REPOSITORY" in listing and "kltest/cli" in listing and "busybox" in listing
    assert kubelite(["image", "inspect", "kltest/cli:1", *root]) == 0
    assert '"Cmd": [' in capsys.readouterr().out
    assert kubelite(["image", "rm", "kltest/cli:1", *root]) == 0
    assert "Untagged: kltest/cli:1" in capsys.readouterr().out
    assert kubelite(["image", "rm", "kltest/nothere:1", *root]) == 1
    assert "not found" in capsys.readouterr().err


async def test_concurrent_rootfs_unpacks_each_layer_once(store: ImageStore) -> None:
    import_busybox(store)
    results = await asyncio.gather(*(store.rootfs("busybox") for _ in range(4)))
    assert {tuple(r.lowerdirs) for r in results} == {tuple(results[0].lowerdirs)}
    assert [p.name for p in store.layers_dir.iterdir() if not p.name.startswith(".")] == [
        results[0].lowerdirs[0].name
    ]
    assert not [p for p in store.layers_dir.iterdir() if ".tmp-" in p.name]
