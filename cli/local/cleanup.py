"""Removing what a node leaves behind on purpose.

Containers outlive their kubelet (so that restarting it restarts nothing), which means
stopping an agent is not enough to take a node down: `kubelite down` opens the node's
runtime state and removes every sandbox (its containers, mounts, namespaces and cgroups),
then stops the node's launcher.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from runtime.cgroups import CgroupError, open_cgroup


async def clean_node(root_dir: Path, *, cgroup_parent: str = "kubelite") -> int:
    """Remove every pod sandbox under `root_dir`; returns how many there were."""
    from runtime.container.runtime import Runtime

    if not (root_dir / "pods").is_dir() and not (root_dir / "containers").is_dir():
        return 0
    runtime = await Runtime.open(root_dir, cgroup_parent=cgroup_parent)
    try:
        sandboxes = runtime.sandboxes()
        for sandbox in sandboxes:
            await runtime.remove_sandbox(sandbox.pod_uid, grace=0)
        for state in runtime.list():
            await runtime.remove(state.id, grace=0)
        return len(sandboxes)
    finally:
        await runtime.close()
        await runtime.shutdown_launcher()
        with contextlib.suppress(CgroupError):  # the node's parent cgroup, now empty
            open_cgroup("/sys/fs/cgroup", cgroup_parent).remove()
