"""``run_once``: run one command in a throwaway container and return its exit code.

For builds (a Dockerfile RUN step): the caller owns ``upperdir``, which keeps the
step's filesystem changes; everything else (a private runtime root, sandbox, launcher,
cgroup) is made for the call and removed afterwards.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from runtime.cgroups import open_cgroup
from runtime.container.runtime import Runtime
from runtime.container.spec import ContainerSpec, Mount


async def run_once(*, lowerdirs: list[Path | str], upperdir: Path | str, argv: list[str],
                   env: dict[str, str] | None = None, workdir: str = "/", user: str = "",
                   mounts: list[Mount] | None = None, output: Callable[[str, str], None] | None = None,
                   cgroup_root: Path | str = "/sys/fs/cgroup") -> int:
    """Exit code of ``argv`` run over ``lowerdirs`` (top-most first) with changes kept in
    ``upperdir``. ``output(stream, line)`` receives the log lines after the exit."""
    upper = Path(upperdir)
    upper.mkdir(parents=True, exist_ok=True)
    # overlayfs needs its work dir on the upper dir's filesystem: a sibling, removed after.
    work = Path(tempfile.mkdtemp(prefix=".kubelite-work-", dir=upper.parent))
    root = Path(tempfile.mkdtemp(prefix="kubelite-once-"))
    parent = f"kubelite-once-{secrets.token_hex(4)}"
    rt = await Runtime.open(root, cgroup_root=cgroup_root, cgroup_parent=parent)
    try:
        sb = await rt.create_sandbox("once", "once", hostname="buildkit")
        spec = ContainerSpec(name="run", argv=argv, lowerdirs=[str(p) for p in lowerdirs], env=env or {},
                             working_dir=workdir, user=user, mounts=mounts or [], upperdir=str(upper),
                             overlay_workdir=str(work))
        c = await rt.create_container(sb, spec)
        await rt.start(c.id)
        await rt.wait(c.id)
        st = rt.status(c.id)
        if output is not None:
            for line in rt.log_path(c.id).read_text(errors="replace").splitlines():
                parts = line.split(" ", 3)
                output(parts[1], parts[3] if len(parts) == 4 else "")
        return st.exit_code if st.exit_code is not None else 255
    finally:
        await rt.remove_sandbox("once")
        await rt.close()
        await rt.shutdown_launcher()
        open_cgroup(cgroup_root, parent).remove()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
