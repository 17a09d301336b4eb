"""Dockerfile builds for real: RUN in namespaced containers over overlayfs, layers, cache."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from runtime.build.builder import Builder, BuildError
from runtime.build.step_runner import UnshareStepRunner
from runtime.images.busybox import import_busybox
from runtime.images.importer import import_rootfs
from runtime.images.store import ImageStore
from tests.node.test_images_fixtures import kltest_dir, needs_root

__all__ = ["kltest_dir"]

pytestmark = [pytest.mark.root, needs_root]

CLASSIC = """\
# the introductory example: FROM, WORKDIR, ENV, COPY, RUN, CMD, EXPOSE
FROM busybox
WORKDIR /app
ENV GREETING="hello from" \\
    TARGET=kubelite
COPY . .
RUN echo "$GREETING $TARGET" > message.txt && \\
    cat app.sh >> log.txt && rm /etc/group
CMD ["sh", "app.sh"]
EXPOSE 8080
"""


class Sink:
    def __init__(self) -> None:
        self.text = ""

    def __call__(self, text: str) -> None:
        self.text += text


@pytest.fixture
def store(kltest_dir: Path) -> ImageStore:
    s = ImageStore(kltest_dir / "store")
    import_busybox(s)
    return s


def make_context(root: Path, dockerfile: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def host_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return f.read().splitlines()


async def run_image(store: ImageStore, ref: str, tmp: Path, argv: list[str] | None = None) -> tuple[int, str]:
    """Run the image's entrypoint+cmd (or argv) with the default StepRunner; (exit code, output)."""
    rootfs = await store.rootfs(ref)
    out = bytearray()
    code = await UnshareStepRunner(out.extend).run(
        lowerdirs=rootfs.lowerdirs,
        upperdir=tmp / "kltest-upper",
        argv=argv or rootfs.config.argv,
        env=rootfs.config.env_dict,
        workdir=rootfs.config.working_dir or "/",
        user=rootfs.config.user,
    )
    return code, out.decode()


async def test_classic_dockerfile_builds_runs_and_rebuilds_from_cache(store: ImageStore, kltest_dir: Path) -> None:
    ctx = make_context(
        kltest_dir / "ctx",
        CLASSIC,
        {"app.sh": 'echo "$(cat message.txt) on port 8080"\n', "secret.key": "no", ".dockerignore": "*.key\n"},
    )
    sink = Sink()
    first = await Builder(store, output=sink).build(ctx, tags=["kltest/app:1"])
    assert "Step 1/7 : FROM busybox" in sink.text and "Step 7/7 : EXPOSE 8080" in sink.text
    assert "Successfully tagged kltest/app:1" in sink.text
    assert first.cached == 0

    manifest = store.manifest(first.manifest_digest)
    assert len(manifest.layers) == 3  # busybox, COPY, RUN: one per filesystem step
    config = store.config(first.manifest_digest)
    assert config.cmd == ("sh", "app.sh")
    assert config.working_dir == "/app"
    assert config.exposed_ports == ("8080/tcp",)
    assert config.env_dict["GREETING"] == "hello from" and config.env_dict["TARGET"] == "kubelite"

    rootfs = await store.rootfs("kltest/app:1")
    run_layer = rootfs.lowerdirs[0]  # top-most: what RUN wrote
    assert (run_layer / "app/message.txt").read_text() == "hello from kubelite\n"
    assert not (rootfs.lowerdirs[1] / "app/secret.key").exists()  # .dockerignore

    code, output = await run_image(store, "kltest/app:1", kltest_dir)
    assert (code, output) == (0, "hello from kubelite on port 8080\n")
    code, output = await run_image(
        store, "kltest/app:1", kltest_dir, ["sh", "-c", "test ! -e /etc/group && ls /app && cat /etc/passwd"]
    )
    assert code == 0, output
    assert output.split("\n")[:4] == ["Dockerfile", "app.sh", "log.txt", "message.txt"]  # the whiteout hides it

    sink = Sink()
    second = await Builder(store, output=sink).build(ctx, tags=["kltest/app:1"])
    assert second.cached == second.steps - 1  # every step after FROM
    assert sink.text.count("Using cache") == 6
    assert second.manifest_digest == first.manifest_digest

    (ctx / "app.sh").write_text('echo "changed"\n')
    sink = Sink()
    third = await Builder(store, output=sink).build(ctx, tags=["kltest/app:2"])
    assert third.cached == 2  # WORKDIR, ENV; COPY sees new content, so RUN and the rest run again
    assert await run_image(store, "kltest/app:2", kltest_dir) == (0, "changed\n")


async def test_user_args_chown_globs_and_entrypoint(store: ImageStore, kltest_dir: Path) -> None:
    dockerfile = """\
FROM busybox
ARG WHO=nobody
ARG UNUSED_DEFAULT
LABEL org.example.kind="test image" stage=${STAGE:-dev}
COPY --chown=nobody:nobody *.txt /data/
COPY ["dir", "/data/dir"]
WORKDIR /srv
COPY a.txt .
USER $WHO
RUN id -u > /tmp/uid && touch /tmp/made-by-user
ENTRYPOINT ["sh", "-c", "cat /tmp/uid; ls /data /data/dir; echo \\"$0\\""]
CMD ["default-arg"]
VOLUME /data
"""
    ctx = make_context(kltest_dir / "ctx2", dockerfile, {"a.txt": "a", "b.txt": "b", "c.md": "c", "dir/inner": "i"})
    result = await Builder(store, output=Sink()).build(ctx, tags=["kltest/user:1"], build_args={"WHO": "65534"})
    config = store.config(result.manifest_digest)
    assert config.user == "65534"
    assert config.labels == {"org.example.kind": "test image", "stage": "dev"}
    assert config.volumes == ("/data",)
    assert config.entrypoint is not None and config.cmd == ("default-arg",)
    rootfs = await store.rootfs("kltest/user:1")
    copied = rootfs.lowerdirs[3] / "data/a.txt"
    assert (os.stat(copied).st_uid, os.stat(copied).st_gid) == (65534, 65534)
    assert not (rootfs.lowerdirs[3] / "data/c.md").exists()
    assert (rootfs.lowerdirs[1] / "srv/a.txt").read_text() == "a"  # COPY file . with a new WORKDIR
    code, out = await run_image(store, "kltest/user:1", kltest_dir)
    assert code == 0, out
    assert out == "65534\n/data:\na.txt\nb.txt\ndir\n\n/data/dir:\ninner\ndefault-arg\n"


async def test_entrypoint_resets_inherited_cmd(store: ImageStore, kltest_dir: Path) -> None:
    ctx = make_context(kltest_dir / "ctx3", "FROM busybox\nENTRYPOINT echo hi\n", {})
    result = await Builder(store, output=Sink()).build(ctx, tags=["kltest/ep:1"])
    config = store.config(result.manifest_digest)
    assert config.entrypoint == ("/bin/sh", "-c", "echo hi")
    assert config.cmd is None  # busybox's CMD ["sh"] is dropped, as in Docker
    assert await run_image(store, "kltest/ep:1", kltest_dir) == (0, "hi\n")


async def test_failing_run_reports_step_and_exit_code(store: ImageStore, kltest_dir: Path) -> None:
    ctx = make_context(kltest_dir / "ctx4", "FROM busybox\nRUN echo before && exit 7\n", {})
    sink = Sink()
    with pytest.raises(BuildError, match=r"step 2/2 .*returned a non-zero code: 7"):
        await Builder(store, output=sink).build(ctx, tags=["kltest/fail:1"])
    assert "before" in sink.text
    assert not store.has_image("kltest/fail:1")
    assert list((store.root / "tmp").iterdir()) == []  # staging removed
    assert not [line for line in host_mounts() if "kltest" in line]


async def test_scratch_and_add_extracts_local_tar(store: ImageStore, kltest_dir: Path) -> None:
    ctx = kltest_dir / "ctx5"
    ctx.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg/hello")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    (ctx / "files.tar.gz").write_bytes(buf.getvalue())
    (ctx / "Dockerfile").write_text('FROM scratch\nADD files.tar.gz /opt/\nCMD ["/opt/pkg/hello"]\n')
    result = await Builder(store, output=Sink()).build(ctx, tags=["kltest/scratch:1"])
    manifest = store.manifest(result.manifest_digest)
    assert len(manifest.layers) == 1
    rootfs = await store.rootfs("kltest/scratch:1")
    assert (rootfs.lowerdirs[0] / "opt/pkg/hello").read_text() == "hello"


async def test_copy_outside_context_is_refused(store: ImageStore, kltest_dir: Path) -> None:
    (kltest_dir / "outside.txt").write_text("secret")
    ctx = make_context(kltest_dir / "ctx6", "FROM busybox\nCOPY ../outside.txt /x\n", {})
    os.symlink(kltest_dir, ctx / "up")
    with pytest.raises(BuildError, match="outside the build context"):
        await Builder(store, output=Sink()).build(ctx)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY up/outside.txt /x\n")
    with pytest.raises(BuildError, match="outside the build context"):
        await Builder(store, output=Sink()).build(ctx)


async def test_copy_destination_follows_the_images_symlinks(store: ImageStore, kltest_dir: Path) -> None:
    """With /lib -> usr/lib in the image (as in Debian), COPY x /lib/ lands in /usr/lib, keeping the link."""
    base = kltest_dir / "base"
    (base / "usr/lib").mkdir(parents=True)
    os.symlink("usr/lib", base / "lib")
    os.symlink("/usr/lib", base / "abslib")
    import_rootfs(store, base, tags=["kltest/merged-usr:1"])
    ctx = make_context(
        kltest_dir / "ctx7",
        "FROM kltest/merged-usr:1\nCOPY f.so /lib/\nCOPY g.so /abslib/sub/../\n",
        {"f.so": "f", "g.so": "g"},
    )
    await Builder(store, output=Sink()).build(ctx, tags=["kltest/merged-usr:2"])
    rootfs = await store.rootfs("kltest/merged-usr:2")
    assert (rootfs.lowerdirs[1] / "usr/lib/f.so").read_text() == "f"
    assert (rootfs.lowerdirs[0] / "usr/lib/g.so").read_text() == "g"
    assert not (rootfs.lowerdirs[1] / "lib").exists() and not (rootfs.lowerdirs[0] / "abslib").exists()


MULTI_STAGE = """\
FROM busybox AS builder
WORKDIR /src
COPY app.txt .
RUN mkdir -p /out/lib/gone && cp app.txt /out/app.txt && echo lib > /out/lib/a && echo tmp > /out/lib/tmp \\
    && echo old > /out/lib/gone/x && echo other > /src/other
RUN rm /out/lib/tmp && ln -s a /out/lib/link && rm -r /out/lib/gone && mkdir /out/lib/gone && echo y > /out/lib/gone/y
FROM busybox
COPY --from=builder /out/app.txt /app/
COPY --from=BUILDER --chown=nobody:nobody out/lib /app/lib
CMD ["sh", "-c", "find /app | sort; cat /app/app.txt; test ! -e /src && test ! -e /out && echo clean"]
"""


async def test_multi_stage_copies_the_stages_merged_filesystem(store: ImageStore, kltest_dir: Path) -> None:
    """COPY --from sees the builder stage as its container did: a file deleted by a later RUN (a whiteout)
    and a directory re-created by one (opaque) keep only what survived; nothing else of the stage leaks."""
    ctx = make_context(kltest_dir / "ctx-ms", MULTI_STAGE, {"app.txt": "v1\n"})
    sink = Sink()
    first = await Builder(store, output=sink).build(ctx, tags=["kltest/ms:1"])
    assert "Step 1/9 : FROM busybox AS builder" in sink.text and "Step 9/9 : CMD" in sink.text
    manifest = store.manifest(first.manifest_digest)
    assert len(manifest.layers) == 3  # busybox and the two COPY --from: nothing of the builder's layers
    rootfs = await store.rootfs("kltest/ms:1")
    copied = rootfs.lowerdirs[0] / "app/lib"
    assert sorted(p.name for p in copied.iterdir()) == ["a", "gone", "link"]
    assert os.readlink(copied / "link") == "a"  # symlinks inside a copied tree stay symlinks
    assert (os.stat(copied / "a").st_uid, os.stat(copied / "a").st_gid) == (65534, 65534)
    code, out = await run_image(store, "kltest/ms:1", kltest_dir)
    assert code == 0, out
    assert out == (
        "/app\n/app/app.txt\n/app/lib\n/app/lib/a\n/app/lib/gone\n/app/lib/gone/y\n/app/lib/link\nv1\nclean\n"
    )

    # Nothing changed: every step after the FROMs is a cache hit, same image.
    sink = Sink()
    second = await Builder(store, output=sink).build(ctx, tags=["kltest/ms:1"])
    assert second.cached == second.steps - 2
    assert second.manifest_digest == first.manifest_digest
    assert list((store.root / "tmp").iterdir()) == [] and store.leases() == {}

    # A context file only the builder reads: the final stage's COPY --from runs again with the new content.
    (ctx / "app.txt").write_text("v2\n")
    sink = Sink()
    third = await Builder(store, output=sink).build(ctx, tags=["kltest/ms:2"])
    assert third.cached == 1  # WORKDIR only
    assert sink.text.split("Step 7/9")[1].split("Step 8/9")[0].count("Using cache") == 0
    assert (await run_image(store, "kltest/ms:2", kltest_dir))[1].endswith("v2\nclean\n")


STAGES = """\
ARG VERSION=1.0
FROM busybox AS base
ARG VERSION
RUN echo "v=$VERSION" > /base.txt
FROM base AS second
RUN echo "second:${VERSION:-unset}" > /second.txt
FROM busybox
COPY --from=0 /base.txt /from-index.txt
COPY --from=second /base.txt /second.txt /both/
CMD ["cat", "/from-index.txt", "/both/base.txt", "/both/second.txt"]
"""


async def test_stage_from_stage_index_and_target(store: ImageStore, kltest_dir: Path) -> None:
    ctx = make_context(kltest_dir / "ctx-st", STAGES, {})
    sink = Sink()
    await Builder(store, output=sink).build(ctx, tags=["kltest/st:second"], target="Second")
    assert "Step 6/6 : RUN" in sink.text and "FROM busybox\n" not in sink.text  # stopped after the target
    # `FROM base`: the stage starts from base's result; a global ARG is visible only where redeclared.
    code, out = await run_image(store, "kltest/st:second", kltest_dir, ["cat", "/base.txt", "/second.txt"])
    assert (code, out) == (0, "v=1.0\nsecond:unset\n")
    assert len(store.manifest(store.resolve("kltest/st:second")).layers) == 3

    result = await Builder(store, output=Sink()).build(ctx, tags=["kltest/st:all"], build_args={"VERSION": "2"})
    assert result.steps == 10
    assert await run_image(store, "kltest/st:all", kltest_dir) == (0, "v=2\nv=2\nsecond:unset\n")


@pytest.mark.parametrize(
    ("dockerfile", "target", "message"),
    [
        ("FROM busybox AS a\nFROM busybox\nCOPY --from=nope /bin/sh /x\n",
         None, r"step 3/3 \(COPY --from=nope /bin/sh /x\) failed: COPY --from=nope: no earlier stage is named "
               r"'nope' \(earlier stages: a\) and it is not an image"),
        ("FROM busybox AS a\nRUN true\nFROM busybox\nCOPY --from=a /missing /x\n",
         None, r"step 4/4 .*: COPY --from=a: /missing not found in stage a"),
        ("FROM busybox AS a\nFROM busybox\nCOPY --from=1 /bin/sh /x\n", None, "stage 1 is not an earlier stage"),
        ("FROM later\nFROM busybox AS later\n", None, r"step 1/2 .*'later' refers to stage 1, defined later"),
        ("FROM busybox AS a\nFROM busybox AS b\n", "c", "target stage 'c' could not be found"),
        ("FROM busybox AS a\nFROM busybox AS A\n", None, "duplicate stage name 'a'"),
        ('ARG A="open\nFROM busybox\n', None, r"step 1/2 \(ARG A=\"open\) failed"),
    ],
)
async def test_multi_stage_errors_name_the_step(
    store: ImageStore, kltest_dir: Path, dockerfile: str, target: str | None, message: str
) -> None:
    ctx = make_context(kltest_dir / "ctx-err", dockerfile, {})
    with pytest.raises(BuildError, match=message):
        await Builder(store, output=Sink()).build(ctx, tags=["kltest/err:1"], target=target)
    assert not store.has_image("kltest/err:1")
    assert list((store.root / "tmp").iterdir()) == [] and store.leases() == {}
