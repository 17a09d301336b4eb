"""`kubelite build`: run a Dockerfile step by step into an image in the store.

    Dockerfile --parse--> instructions --for each--> cache lookup (step key)
                                             | hit: reuse layer / config change
                                             | miss: RUN in a container (StepRunner) -> upper dir
                                             |       COPY/ADD into a staging dir
                                             v       pack -> layer blob -> unpack once
                                        image config + layers --commit--> manifest, tags

Invariants: one layer per filesystem step (RUN, COPY, ADD), none for the
others; every step's result is cached under a key that covers everything it
depends on (see cache.py), and a rebuild with nothing changed hits the cache at
every step and yields the same image digest; staging directories live under
the store's tmp dir and are removed whatever happens. Only one FROM (no
multi-stage builds) and no ADD from URLs: builds use no network of their own.
"""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import datetime
import json
import shutil
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runtime.build import imagefs, metadata
from runtime.build.cache import BuildCache, CacheEntry, chain_after, step_key
from runtime.build.context import BuildContext, copy_entry, safe_dest
from runtime.build.dockerfile import Instruction, parse_dockerfile
from runtime.build.shellwords import process_word, split_words
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

    @property
    def env(self) -> dict[str, str]:
        """Variables for substitution and for RUN: ENV wins over ARG, as in Docker."""
        return {**self.args, **self.config.env_dict}


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
    ) -> BuildResult:
        build_args = dict(build_args or {})
        path = dockerfile or context_dir / "Dockerfile"
        try:
            instructions = parse_dockerfile(path.read_text())
        except OSError as err:
            raise BuildError(f"failed to read Dockerfile {path}: {err}") from err
        context = BuildContext(context_dir)
        staging = Path(tempfile.mkdtemp(prefix="build-", dir=self.store.root / "tmp"))
        consumed: set[str] = set()
        # Layers written but not yet tagged are leased, so a concurrent GC keeps them.
        lease = f"build-{uuid.uuid4().hex[:12]}"
        total, cached = len(instructions), 0
        state: _State | None = None
        meta_args: dict[str, str] = {}
        try:
            for n, ins in enumerate(instructions, start=1):
                self._say(f"Step {n}/{total} : {ins.text}")
                try:
                    if ins.keyword == "FROM":
                        if state is not None:
                            raise BuildError("multi-stage builds (a second FROM) are not supported")
                        state = await self._from(ins, meta_args)
                        self.store.lease(lease, None, blobs=[d.digest for d in state.layers])
                    elif state is None:
                        if ins.keyword != "ARG":
                            raise BuildError("the first instruction must be FROM (or ARG before FROM)")
                        name, value = self._arg(ins, meta_args, build_args, consumed)
                        if value is not None:
                            meta_args[name] = value
                        continue
                    else:
                        cached += await self._step(ins, state, context, staging, build_args, consumed)
                        self.store.lease(lease, None, blobs=[d.digest for d in state.layers])
                except ImageError as err:
                    if isinstance(err, BuildError) and str(err).startswith("step "):
                        raise
                    raise BuildError(f"step {n}/{total} ({ins.text}) failed: {err}") from err
                self._say(f" ---> {state.chain[:12]}")
            if state is None:
                raise BuildError("the Dockerfile has no FROM")
            unused = sorted(set(build_args) - consumed)
            if unused:
                self._say(f"[Warning] One or more build-args {unused} were not consumed")
            config = dataclasses.replace(state.config, created=state.created or _now())
            digest = self.store.commit_image(config=config, layers=state.layers, tags=list(tags or []))
        finally:
            self.store.release(lease)
            await asyncio.to_thread(shutil.rmtree, staging, True)
        image_id = self.store.manifest(digest).config.digest
        self._say(f"Successfully built {short_id(image_id)}")
        for tag in tags or []:
            self._say(f"Successfully tagged {tag}")
        return BuildResult(manifest_digest=digest, image_id=image_id, steps=total, cached=cached)

    # instructions

    def _arg(
        self, ins: Instruction, env: dict[str, str], build_args: dict[str, str], consumed: set[str]
    ) -> tuple[str, str | None]:
        name, eq, default = ins.args.partition("=")
        name = name.strip()
        consumed.add(name)
        if name in build_args:
            return name, build_args[name]
        return name, process_word(default, env) if eq else None

    async def _from(self, ins: Instruction, meta_args: dict[str, str]) -> _State:
        words = split_words(ins.args, meta_args)
        if len(words) == 3 and words[1].lower() == "as":
            words = words[:1]
        if len(words) != 1:
            raise BuildError(f"FROM takes one image, got {ins.args!r}")
        image = words[0]
        if image == "scratch":
            return _State(config=ImageConfig(), layers=[], lowerdirs=[], chain=step_key("scratch", "", ""))
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
            chain=step_key(rootfs.manifest_digest, "", ""), created=rootfs.config.created,
        )  # fmt: skip

    async def _step(
        self,
        ins: Instruction,
        state: _State,
        context: BuildContext,
        staging: Path,
        build_args: dict[str, str],
        consumed: set[str],
    ) -> int:
        """Run one instruction against `state`; returns 1 on a cache hit, else 0."""
        kw = ins.keyword
        if kw in IGNORED:
            self._say(f"[Warning] {kw} is not supported by kubelite build; ignored")
            return 0
        if kw == "ARG":
            name, value = self._arg(ins, state.env, build_args, consumed)
            if value is not None:
                state.args[name] = value
        elif kw == "SHELL":
            if not ins.exec_form:
                raise BuildError('SHELL requires the JSON form, e.g. SHELL ["/bin/sh", "-c"]')
            state.shell = tuple(ins.exec_form)
        extra, sources = self._dependencies(ins, state, context)
        key = step_key(state.chain, ins.text, extra)
        entry = self.cache.get(key)
        if entry is not None and entry.layer is not None and not self.store.layout.has_blob(entry.layer.digest):
            entry = None  # its layer was garbage-collected
        hit = entry is not None
        if entry is not None:
            self._say(" ---> Using cache")
        elif kw in FS_STEPS:
            entry = await self._fs_step(ins, state, context, staging, sources)
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

    def _dependencies(self, ins: Instruction, state: _State, context: BuildContext) -> tuple[str, list[str]]:
        """What the step's result depends on beyond its text, and (for COPY/ADD) its sources."""
        env = state.env
        if ins.keyword in ("COPY", "ADD"):
            if "from" in ins.flags:
                raise BuildError("COPY --from (multi-stage builds) is not supported")
            words = ins.exec_form if ins.exec_form is not None else split_words(ins.args, env)
            if len(words) < 2:
                raise BuildError(f"{ins.keyword} needs at least one source and a destination")
            if any("://" in w for w in words[:-1]):
                raise BuildError("ADD from URLs is not supported (builds use no network); download in the context")
            sources = context.resolve_sources(words[:-1])
            flags = {k: process_word(v, env) for k, v in ins.flags.items()}
            extra = json.dumps([context.content_hash(sources), sources, words[-1], flags, state.config.working_dir])
            return extra, sources
        if ins.keyword == "RUN":
            return json.dumps([sorted(env.items()), state.config.user, state.config.working_dir, state.shell]), []
        return json.dumps(sorted(env.items())), []

    async def _fs_step(
        self, ins: Instruction, state: _State, context: BuildContext, staging: Path, sources: list[str]
    ) -> CacheEntry:
        step_dir = staging / uuid.uuid4().hex[:12]
        upper = step_dir / "upper"
        upper.mkdir(parents=True)
        try:
            if ins.keyword == "RUN":
                await self._run(ins, state, step_dir, upper)
            else:
                await asyncio.to_thread(self._copy, ins, state, context, upper, sources)
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

    def _copy(self, ins: Instruction, state: _State, context: BuildContext, upper: Path, sources: list[str]) -> None:
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
            for rel, path in context.walk(src):
                if is_dir:
                    rel_dest = f"{dest}/{rel}" if rel else dest
                else:
                    rel_dest = f"{dest.rstrip('/')}/{src_path.name}" if into_dir else dest
                target = safe_dest(upper, rel_dest)
                if rel == "" and is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue  # the source directory itself: only its content is copied
                copy_entry(path, target, uid=uid, gid=gid, chmod=chmod)

