"""Containers and pod sandboxes: the API the kubelet uses (see runtime/README.md)."""

from runtime.cgroups import CgroupStats, Resources
from runtime.container.exec import ExecError, ExecProcess, ExecResult
from runtime.container.oneshot import run_once
from runtime.container.runtime import ContainerError, Runtime
from runtime.container.sandbox import Sandbox, SandboxError
from runtime.container.spec import ContainerSpec, Mount
from runtime.container.state import ContainerState, Phase, StateError

__all__ = [
    "CgroupStats",
    "ContainerError",
    "ContainerSpec",
    "ContainerState",
    "ExecError",
    "ExecProcess",
    "ExecResult",
    "Mount",
    "Phase",
    "Resources",
    "Runtime",
    "Sandbox",
    "SandboxError",
    "StateError",
    "run_once",
]
