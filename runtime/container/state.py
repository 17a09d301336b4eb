"""A container's explicit state machine, persisted as JSON on disk.

    created --start--> running --exit--> exited
       \\______________start failed_______/

Transitions are checked: anything else raises ``StateError``. The file is replaced
atomically (write tmp, rename) so a reader sees the old or the new state, never half
of one. There is no fsync: it cost milliseconds per start, and after a host crash
no container survives anyway (the kubelet recreates pods from the API). The file is
the only thing a new runtime instance needs to re-adopt a container.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from runtime.container.spec import ContainerSpec


class StateError(Exception):
    """An illegal transition or an unreadable state file."""


class Phase(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"


_ALLOWED = {
    (Phase.CREATED, Phase.RUNNING),
    (Phase.CREATED, Phase.EXITED),
    (Phase.RUNNING, Phase.EXITED),
}


@dataclass(frozen=True)
class ContainerState:
    id: str
    pod_uid: str
    spec: ContainerSpec
    phase: Phase = Phase.CREATED
    created_at_ns: int = 0
    started_at_ns: int | None = None
    finished_at_ns: int | None = None
    exit_code: int | None = None
    reason: str = ""  # Completed, Error, OOMKilled, StartError, Unknown
    message: str = ""
    shim_pid: int | None = None
    init_pid: int | None = None  # host pid of the container's PID 1
    init_start: int | None = None  # its start time, so a reused pid is never mistaken for it
    cgroup: str = ""  # cgroup name under the runtime's cgroup root
    log_path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def to(self, phase: Phase, **changes: Any) -> ContainerState:
        if (self.phase, phase) not in _ALLOWED:
            raise StateError(f"container {self.name}: illegal transition {self.phase} -> {phase}")
        return replace(self, phase=phase, **changes)

    def to_json(self) -> dict[str, Any]:
        # Shallow on purpose: asdict() deep-copies the spec, and this runs three times per container.
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["phase"] = self.phase.value
        out["extra"] = dict(self.extra)
        out["spec"] = self.spec.to_json()
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ContainerState:
        obj = dict(obj)
        obj["spec"] = ContainerSpec.from_json(obj["spec"])
        obj["phase"] = Phase(obj["phase"])
        return cls(**obj)


def save(state: ContainerState, path: Path) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, json.dumps(state.to_json()).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


def load(path: Path) -> ContainerState:
    try:
        with open(path) as f:
            return ContainerState.from_json(json.load(f))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StateError(f"failed to read container state {path}: {e}") from e
