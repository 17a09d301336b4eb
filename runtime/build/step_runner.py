"""Run one build step (RUN) in an isolated container of the image built so far.

`StepRunner` is the narrow seam between the builder and a container runtime;
`UnshareStepRunner` is the small default: it shells out to util-linux, so no
fork happens in the asyncio process beyond an ordinary subprocess exec:

    unshare --mount                      private mount namespace: every mount below
      sh -c 'mount -t overlay ...        dies with it, so nothing needs unmounting
             mount tmpfs on /dev, bind null/zero/full/random/urandom/tty
             exec unshare --fork --pid --uts --ipc --mount-proc --root=M --wd=W -S uid -G gid -- argv'

Writes land in `upperdir` only (overlayfs), which the builder then packs into
a layer. The container shares the host network namespace, as `docker build
--network=host` does. Output (stdout and stderr merged) goes to the sink given
at construction, chunk by chunk as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from runtime.build.users import resolve_user
from runtime.images.errors import ImageError

_SCRIPT = r"""
set -e
opts=$1 merged=$2 wd=$3 uid=$4 gid=$5 unshare=$6 mount=$7 mkdir=$8 touch=$9
shift 9
"$mount" -t overlay overlay -o "$opts" "$merged"
"$mkdir" -p "$merged$wd" "$merged/proc" "$merged/dev"
"$mount" -t tmpfs -o mode=755,nosuid,size=64k tmpfs "$merged/dev"
for d in null zero full random urandom tty; do
  "$touch" "$merged/dev/$d"
  "$mount" --bind "/dev/$d" "$merged/dev/$d"
done
exec "$unshare" --fork --pid --uts --ipc --mount-proc --root="$merged" --wd="$wd" \
  --setuid "$uid" --setgid "$gid" -- "$@"
"""


class StepRunnerError(ImageError):
    """The step's container could not be set up (not: the command failed, that is its exit code)."""


class StepRunner(Protocol):
    async def run(
        self,
        *,
        lowerdirs: list[Path],
        upperdir: Path,
        argv: list[str],
        env: dict[str, str],
        workdir: str,
        user: str,
    ) -> int:
        """Run argv in a container over `lowerdirs` (top-most first) writing to `upperdir`; exit code."""
        ...


def _tool(name: str) -> str:
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise StepRunnerError(f"{name} not found: install util-linux and coreutils")
    return path


def _make_dirs(*dirs: Path) -> None:
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)


class UnshareStepRunner:
    """The default StepRunner: overlay + namespaces + chroot through util-linux `unshare`."""

    def __init__(self, output: Callable[[bytes], None] | None = None) -> None:
        self._output = output or (lambda _chunk: None)

    async def run(
        self,
        *,
        lowerdirs: list[Path],
        upperdir: Path,
        argv: list[str],
        env: dict[str, str],
        workdir: str,
        user: str,
    ) -> int:
        if not lowerdirs:
            raise StepRunnerError("a step needs at least one lower layer (use an empty directory for scratch)")
        if not argv:
            raise StepRunnerError("empty command")
        work = upperdir.parent / f"{upperdir.name}.work"
        merged = upperdir.parent / f"{upperdir.name}.merged"
        uid, gid = resolve_user(lowerdirs, user)
        opts = f"lowerdir={':'.join(str(p) for p in lowerdirs)},upperdir={upperdir},workdir={work}"
        tools = [_tool(t) for t in ("unshare", "mount", "mkdir", "touch")]
        try:
            _make_dirs(upperdir, work, merged)
            proc = await asyncio.create_subprocess_exec(
                tools[0],
                "--mount",
                "--propagation",
                "private",
                "/bin/sh",
                "-c",
                _SCRIPT,
                "sh",
                opts,
                str(merged),
                workdir or "/",
                str(uid),
                str(gid),
                *tools,
                *argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # one process group to kill if the build is cancelled
            )
        except OSError as err:
            raise StepRunnerError(f"failed to start build container for {argv!r}: {err}") from err
        try:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                self._output(chunk)
            return await proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        finally:
            # The mounts lived in the step's own mount namespace, gone with its last process.
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                merged.rmdir()
