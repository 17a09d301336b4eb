"""`kubelite build`: run a Dockerfile step by step into an image in the store.

    Dockerfile --parse--> instructions --for each--> cache lookup (step key)
                                             | hit: reuse layer / config change
                                             | miss: RUN in a container (StepRunner) -> upper dir
                                             |       COPY/ADD into a staging dir
                                             v       pack -> layer blob -> unpack once
                                        image config + layers --commit--> manifest, tags

Multi-stage builds (stages.py): each FROM starts a stage, from an image or
from an earlier stage's result; `COPY --from=<stage|index|image>` reads that
stage's merged filesystem (imagefs.py: layers top-most first, whiteouts and
opaque directories honoured) or an image's; the last stage, or `--target`, is
the image. ARGs before the first FROM are visible to FROM lines only; a stage
redeclares `ARG NAME` to use one.

Invariants: one layer per filesystem step (RUN, COPY, ADD), none for the
others; every step's result is cached under a key that covers everything it
depends on (see cache.py; a COPY --from step's key covers the source stage's
chain key, which changes with its content), and a rebuild with nothing changed
hits the cache at every step and yields the same image digest; the layers of
every stage are leased until the image is committed; staging directories live
under the store's tmp dir and are removed whatever happens. No ADD from URLs:
builds use no network of their own (FROM and COPY --from images are pulled like
any image when missing).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import datetime
import json
import posixpath
import shutil
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from runtime.build import imagefs, metadata
from runtime.build.cache import BuildCache, CacheEntry, chain_after, step_key
from runtime.build.context import BuildContext, copy_entry, safe_dest
from runtime.build.dockerfile import Instruction, parse_dockerfile
from runtime.build.shellwords import process_word, split_words
from runtime.build.stages import Plan, Stage, StageError, plan_stages
from runtime.build.step_runner import StepRunner, UnshareStepRunner
from runtime.build.users import resolve_user
from runtime.images.config import ImageConfig
from runtime.images.digest import short_id
from runtime.images.errors import ImageError
from runtime.images.importer import DEFAULT_PATH, add_layer_from_dir
from runtime.images.mirrors import Mirrors
from runtime.images.oci import OCI_LAYER_GZIP, Descriptor
from runtime.images.pull import PullError, ensure_image
from runtime.images.store import ImageStore
from runtime.images.unpack import extract_tar

FS_STEPS = ("RUN", "COPY", "ADD")
IGNORED = ("HEALTHCHECK", "ONBUILD")


class BuildError(ImageError):
    """A build that failed; the message names the step."""


@dataclass(frozen=True)
class BuildResult:
    manifest_digest: str
    image_id: str  # config digest, what `docker build` prints
    steps: int
    cached: int


@dataclass
class _State:
    """The image as built so far."""

    config: ImageConfig
    layers: list[Descriptor]
    lowerdirs: list[Path]  # top-most first
    chain: str
    args: dict[str, str] = field(default_factory=dict)  # declared ARGs with a value
    shell: tuple[str, ...] = metadata.DEFAULT_SHELL
    cmd_set: bool = False
    created: str = ""
    stage: int = 0  # the index of the stage being built

    @property
    def env(self) -> dict[str, str]:
        """Variables for substitution and for RUN: ENV wins over ARG, as in Docker."""
        return {**self.args, **self.config.env_dict}


@dataclass(frozen=True)
class _Source:
    """Where a COPY --from reads: a finished stage or an image."""

    ref: str  # as written after --from=, expanded
    label: str  # "stage builder", "image alpine:3"
    lowerdirs: list[Path]  # top-most first
    identity: str  # the stage's chain key or the image's manifest digest: changes with the content


@dataclass
class _Build:
    """One build's inputs and bookkeeping, shared by its stages and steps."""

    plan: Plan
    context: BuildContext
    staging: Path
    build_args: dict[str, str]
    lease: str
    meta_args: dict[str, str] = field(default_factory=dict)  # ARGs before the first FROM
    consumed: set[str] = field(default_factory=set)  # build args some ARG declared
    built: list[_State] = field(default_factory=list)  # finished stages, by index
    leased: set[str] = field(default_factory=set)  # blob digests held by the lease


@contextlib.contextmanager
def _naming_step(n: int, total: int, ins: Instruction) -> Iterator[None]:
    """Turn any image error raised by step n into a BuildError that names it."""
    try:
        yield
    except ImageError as err:
        if isinstance(err, BuildError) and str(err).startswith("step "):
            raise
        raise BuildError(f"step {n}/{total} ({ins.text}) failed: {err}") from err


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Builder:
    """Builds Dockerfiles into `store`. `output` receives docker-build-like text as it happens."""

    def __init__(
        self,
        store: ImageStore,
        *,
        runner: StepRunner | None = None,
        output: Callable[[str], None] | None = None,
        mirrors: Mirrors | None = None,
    ) -> None:
        self.store = store
        self.mirrors = mirrors  # where a FROM image missing locally is pulled from first
        self._out = output or _stdout
        # Incremental: a UTF-8 character may be split across two output chunks.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.runner = runner or UnshareStepRunner(lambda chunk: self._out(decoder.decode(chunk)))
        self.cache = BuildCache(store.root / "build-cache")

    def _say(self, line: str) -> None:
        self._out(line + "\n")

    async def build(
        self,
        context_dir: Path,
        *,
        dockerfile: Path | None = None,
        tags: list[str] | None = None,
        build_args: dict[str, str] | None = None,
        target: str | None = None,
    ) -> BuildResult:
        """Build every stage (up to `target`, a stage name, when given); the last one built is the image."""
        path = dockerfile or context_dir / "Dockerfile"
        try:
            plan = plan_stages(parse_dockerfile(path.read_text()))
            stages = plan.until(target)
        except OSError as err:
            raise BuildError(f"failed to read Dockerfile {path}: {err}") from err
        except StageError as err:
            raise BuildError(str(err)) from err
        # Layers written but not yet tagged are leased, so a concurrent GC keeps them.
        run = _Build(
            plan=plan, context=BuildContext(context_dir), build_args=dict(build_args or {}),
            staging=Path(tempfile.mkdtemp(prefix="build-", dir=self.store.root / "tmp")),
            lease=f"build-{uuid.uuid4().hex[:12]}",
        )  # fmt: skip
        total = len(plan.meta_args) + sum(len(s.instructions) for s in stages)
        cached, n = 0, 0
        try:
            for ins in plan.meta_args:
                n += 1
                self._say(f"Step {n}/{total} : {ins.text}")
                with _naming_step(n, total, ins):
                    name, value = self._arg(ins, run.meta_args, run, globals_=False)
                if value is not None:
                    run.meta_args[name] = value
            for stage in stages:
                state: _State | None = None
                for ins in stage.instructions:
                    n += 1
                    self._say(f"Step {n}/{total} : {ins.text}")
                    with _naming_step(n, total, ins):
                        if state is None:
                            state = await self._from(ins, stage, run)
                        else:
                            cached += await self._step(ins, state, run)
                        self._hold(run, [d.digest for d in state.layers])
                    self._say(f" ---> {state.chain[:12]}")
                assert state is not None  # every stage starts with its FROM
                run.built.append(state)
            unused = sorted(set(run.build_args) - run.consumed)
            if unused:
                self._say(f"[Warning] One or more build-args {unused} were not consumed")
            final = run.built[-1]
            config = dataclasses.replace(final.config, created=final.created or _now())
            digest = self.store.commit_image(config=config, layers=final.layers, tags=list(tags or []))
        finally:
            self.store.release(run.lease)
            await asyncio.to_thread(shutil.rmtree, run.staging, True)
        image_id = self.store.manifest(digest).config.digest
        self._say(f"Successfully built {short_id(image_id)}")
        for tag in tags or []:
            self._say(f"Successfully tagged {tag}")
        return BuildResult(manifest_digest=digest, image_id=image_id, steps=total, cached=cached)

    def _hold(self, run: _Build, blobs: list[str]) -> None:
        """Add `blobs` to the build's lease (every stage's layers stay until the image is committed)."""
        if not set(blobs) <= run.leased:
            run.leased.update(blobs)
            self.store.lease(run.lease, None, blobs=sorted(run.leased))

    # instructions

    def _arg(self, ins: Instruction, env: dict[str, str], run: _Build, *, globals_: bool) -> tuple[str, str | None]:
        """An ARG's name and value: the build arg, else its default, else (inside a stage, with
        `globals_`) the value of the global ARG of that name, as Docker scopes them."""
        name, eq, default = ins.args.partition("=")
        name = name.strip()
        run.consumed.add(name)
        if name in run.build_args:
            return name, run.build_args[name]
        if eq:
            return name, process_word(default, env)
        return name, run.meta_args.get(name) if globals_ else None

    async def _from(self, ins: Instruction, stage: Stage, run: _Build) -> _State:
        words = split_words(ins.args, run.meta_args)
        if len(words) == 3 and words[1].lower() == "as":
            words = words[:1]
        if len(words) != 1:
            raise BuildError(f"FROM takes one image, got {ins.args!r}")
        image = words[0]
        parent = run.plan.earlier(image, current=stage.index, by_index=False, self_is_image=True)
        if parent is not None:  # a stage from an earlier stage's result: its config, layers and chain
            src = run.built[parent.index]
            return _State(
                config=src.config, layers=list(src.layers), lowerdirs=list(src.lowerdirs), chain=src.chain,
                shell=src.shell, created=src.created, stage=stage.index,
            )  # fmt: skip
        if image == "scratch":
            return _State(
                config=ImageConfig(), layers=[], lowerdirs=[], chain=step_key("scratch", "", ""), stage=stage.index
            )
        try:
            rootfs = await ensure_image(self.store, image, policy="IfNotPresent", mirrors=self.mirrors,
                                        progress=self._say)
        except PullError as err:
            raise BuildError(
                f"base image {image} is not in the local store and could not be pulled ({err}); "
                "`kubelite image import --busybox` makes busybox:latest without network"
            ) from err
        manifest = self.store.manifest(rootfs.manifest_digest)
        config = dataclasses.replace(rootfs.config, created="")
        return _State(
            config=config, layers=list(manifest.layers), lowerdirs=rootfs.lowerdirs,
            chain=step_key(rootfs.manifest_digest, "", ""), created=rootfs.config.created, stage=stage.index,
        )  # fmt: skip

    async def _copy_source(self, ref: str, state: _State, run: _Build) -> _Source:
        """What `COPY --from=ref` reads: an earlier stage by name or index, else an image."""
        stage = run.plan.earlier(ref, current=state.stage, by_index=True)
        if stage is not None:
            src = run.built[stage.index]
            return _Source(ref=ref, label=stage.label, lowerdirs=src.lowerdirs, identity=src.chain)
        try:
            rootfs = await ensure_image(self.store, ref, policy="IfNotPresent", mirrors=self.mirrors,
                                        progress=self._say)
        except ImageError as err:
            names = [s.name for s in run.plan.stages[: state.stage] if s.name]
            raise BuildError(
                f"COPY --from={ref}: no earlier stage is named {ref!r} (earlier stages: "
                f"{', '.join(names) or 'none named'}) and it is not an image that could be found or pulled ({err})"
            ) from err
        self._hold(run, [d.digest for d in self.store.manifest(rootfs.manifest_digest).layers])
        return _Source(ref=ref, label=f"image {ref}", lowerdirs=rootfs.lowerdirs, identity=rootfs.manifest_digest)

    async def _step(self, ins: Instruction, state: _State, run: _Build) -> int:
        """Run one instruction against `state`; returns 1 on a cache hit, else 0."""
        kw = ins.keyword
        if kw in IGNORED:
            self._say(f"[Warning] {kw} is not supported by kubelite build; ignored")
            return 0
        if kw == "ARG":
            name, value = self._arg(ins, state.env, run, globals_=True)
            if value is not None:
                state.args[name] = value
        elif kw == "SHELL":
            if not ins.exec_form:
                raise BuildError('SHELL requires the JSON form, e.g. SHELL ["/bin/sh", "-c"]')
            state.shell = tuple(ins.exec_form)
        source = None
        if kw == "COPY" and "from" in ins.flags:
            source = await self._copy_source(process_word(ins.flags["from"], state.env), state, run)
        extra, sources = self._dependencies(ins, state, run.context, source)
        key = step_key(state.chain, ins.text, extra)
        entry = self.cache.get(key)
        if entry is not None and entry.layer is not None and not self.store.layout.has_blob(entry.layer.digest):
            entry = None  # its layer was garbage-collected
        hit = entry is not None
        if entry is not None:
            self._say(" ---> Using cache")
        elif kw in FS_STEPS:
            entry = await self._fs_step(ins, state, run, sources, source)
            self.cache.put(key, entry)
        else:
            entry = CacheEntry(created=_now())
            self.cache.put(key, entry)
        if kw not in FS_STEPS and kw not in ("ARG", "SHELL"):
            state.config = metadata.apply(state.config, ins, state.env, shell=state.shell, cmd_set=state.cmd_set)
            state.cmd_set = state.cmd_set or kw == "CMD"
        history: dict[str, object] = {"created": entry.created, "created_by": ins.text}
        if entry.layer is not None:
            state.layers.append(entry.layer)
            layer_dir = await asyncio.to_thread(self.store.unpack_sync, entry.layer, diff_id=entry.diff_id)
            state.lowerdirs.insert(0, layer_dir)
            state.config = dataclasses.replace(state.config, diff_ids=(*state.config.diff_ids, entry.diff_id or ""))
        else:
            history["empty_layer"] = True
        state.config = dataclasses.replace(state.config, history=(*state.config.history, history))
        state.created = entry.created
        state.chain = chain_after(key, entry.layer)
        return 1 if hit else 0

    def _dependencies(
        self, ins: Instruction, state: _State, context: BuildContext, source: _Source | None
    ) -> tuple[str, list[str]]:
        """What the step's result depends on beyond its text, and (for COPY/ADD) its sources:
        context-relative paths, or absolute paths in the COPY --from `source`."""
        env = state.env
        if ins.keyword in ("COPY", "ADD"):
            words = ins.exec_form if ins.exec_form is not None else split_words(ins.args, env)
            if len(words) < 2:
                raise BuildError(f"{ins.keyword} needs at least one source and a destination")
            flags = {k: process_word(v, env) for k, v in ins.flags.items()}
            if source is not None:
                sources = self._source_paths(source, words[:-1])
                # The source's identity (stage chain key / image digest) stands for its content.
                return json.dumps([source.identity, sources, words[-1], flags, state.config.working_dir]), sources
            if any("://" in w for w in words[:-1]):
                raise BuildError("ADD from URLs is not supported (builds use no network); download in the context")
            sources = context.resolve_sources(words[:-1])
            extra = json.dumps([context.content_hash(sources), sources, words[-1], flags, state.config.working_dir])
            return extra, sources
        if ins.keyword == "RUN":
            return json.dumps([sorted(env.items()), state.config.user, state.config.working_dir, state.shell]), []
        return json.dumps(sorted(env.items())), []

    @staticmethod
    def _source_paths(source: _Source, patterns: list[str]) -> list[str]:
        """Absolute paths in the source filesystem matching `patterns` (relative ones start at its root)."""
        out: list[str] = []
        for pattern in patterns:
            matches = imagefs.glob(source.lowerdirs, pattern)
            if not matches:
                raise BuildError(f"COPY --from={source.ref}: {pattern} not found in {source.label}")
            out.extend(matches)
        return out

    async def _fs_step(
        self, ins: Instruction, state: _State, run: _Build, sources: list[str], source: _Source | None
    ) -> CacheEntry:
        step_dir = run.staging / uuid.uuid4().hex[:12]
        upper = step_dir / "upper"
        upper.mkdir(parents=True)
        try:
            if ins.keyword == "RUN":
                await self._run(ins, state, step_dir, upper)
            else:
                await asyncio.to_thread(self._copy, ins, state, run.context, upper, sources, source)
            packed = await asyncio.to_thread(add_layer_from_dir, self.store, upper, overlay_upper=True)
        finally:
            await asyncio.to_thread(shutil.rmtree, step_dir, True)
        layer = Descriptor(OCI_LAYER_GZIP, packed.digest, packed.size)
        return CacheEntry(created=_now(), layer=layer, diff_id=packed.diff_id)

    async def _run(self, ins: Instruction, state: _State, step_dir: Path, upper: Path) -> None:
        argv = metadata.command(ins, state.shell)
        if not argv:
            raise BuildError("RUN needs a command")
        lowerdirs = state.lowerdirs
        if not lowerdirs:  # FROM scratch: overlayfs needs at least one lower layer
            (step_dir / "empty").mkdir()
            lowerdirs = [step_dir / "empty"]
        env = {"PATH": DEFAULT_PATH, **state.env}
        container = uuid.uuid4().hex[:12]
        self._say(f" ---> Running in {container}")
        code = await self.runner.run(
            lowerdirs=lowerdirs, upperdir=upper, argv=list(argv), env=env,
            workdir=state.config.working_dir or "/", user=state.config.user,
        )  # fmt: skip
        if code != 0:
            raise BuildError(f"The command '{' '.join(argv)}' returned a non-zero code: {code}")
        self._say(f"Removing intermediate container {container}")

    def _copy(
        self,
        ins: Instruction,
        state: _State,
        context: BuildContext,
        upper: Path,
        sources: list[str],
        source: _Source | None,
    ) -> None:
        """Copy `sources` (from the context, or from `source`'s filesystem) into the step's upper dir."""
        env = state.env
        words = ins.exec_form if ins.exec_form is not None else split_words(ins.args, env)
        dest = words[-1]
        if not dest.startswith("/"):
            dest = (state.config.working_dir or "/").rstrip("/") + "/" + dest
        uid, gid = (
            resolve_user(state.lowerdirs, process_word(ins.flags["chown"], env)) if "chown" in ins.flags else (0, 0)
        )
        chmod = int(ins.flags["chmod"], 8) if "chmod" in ins.flags else None
        # "dir/", "." and "dir/." name a directory even when the image does not have it yet.
        into_dir = dest.endswith(("/", "/.")) or len(sources) > 1
        dest = imagefs.resolve(state.lowerdirs, dest)  # through the image's symlinks, as the container sees it
        into_dir = into_dir or imagefs.is_dir(state.lowerdirs, dest)
        for src in sources:
            entries: Iterable[tuple[str, Path]]
            if source is not None:
                # The source path's symlinks are followed inside the source filesystem (as BuildKit
                # does); what lies below it is copied as it is, symlinks as symlinks.
                real = imagefs.resolve(source.lowerdirs, src)
                is_dir = imagefs.is_dir(source.lowerdirs, real)
                name = posixpath.basename(src.rstrip("/")) or posixpath.basename(real)
                entries = imagefs.walk(source.lowerdirs, real)
            else:
                src_path = context.root / src
                if (
                    ins.keyword == "ADD"
                    and src_path.is_file()
                    and not src_path.is_symlink()
                    and tarfile.is_tarfile(src_path)
                ):
                    target = safe_dest(upper, dest)
                    target.mkdir(parents=True, exist_ok=True)
                    with open(src_path, "rb") as f:
                        extract_tar(f, target, label=src, whiteouts=False)
                    continue
                is_dir = src_path.is_dir() and not src_path.is_symlink()
                name = src_path.name
                entries = context.walk(src)
            for rel, path in entries:
                if is_dir:
                    rel_dest = f"{dest}/{rel}" if rel else dest
                else:
                    rel_dest = f"{dest.rstrip('/')}/{name}" if into_dir else dest
                target = safe_dest(upper, rel_dest)
                if rel == "" and is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue  # the source directory itself: only its content is copied
                copy_entry(path, target, uid=uid, gid=gid, chmod=chmod)

