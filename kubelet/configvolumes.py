"""configMap and secret volumes: what files a volume holds (pure), and putting them on the node.

    payload(volume, object)   pure: {path: File(bytes, mode)} from the keys (all, or `items`),
                              modes from the item's `mode`, else `defaultMode` (0644); a
                              missing object or key is `VolumeError` with the kubelet's words
                              (`configmap "x" not found`, `configmap references non-existent
                              config key: k`) unless the volume is `optional`
    setup(dir, payload, ...)  a secret volume's directory becomes a tmpfs first (memory only,
                              never the node's disk); then `atomicwriter.write`
    unmount_under(dir)        every mount below a pod's volumes dir, deepest first (the secret
                              tmpfs), before the pod's directory is removed

The volume directory is `Sandbox.volume_dir(name)`; containers bind-mount it read-only
(Kubernetes mounts these volumes read-only whatever the pod says), so the `..data` swap of
an update is seen at once through the bind; a `subPath` bind holds the old file.
"""

from __future__ import annotations

import os
from pathlib import Path

from api.config import DEFAULT_MODE, ConfigMap, Secret, configmap_payload, secret_payload
from api.core import Volume
from kubelet.atomicwriter import File, Payload, write
from runtime import syscalls as sc

TMPFS_FLAGS = sc.MS_NOSUID | sc.MS_NODEV


class VolumeError(Exception):
    """A volume cannot be set up now (its object or a key is missing); the kubelet's FailedMount."""


def is_config_volume(v: Volume) -> bool:
    return v.config_map is not None or v.secret is not None


def payload(v: Volume, obj: ConfigMap | Secret | None) -> Payload:
    """The files of a configMap or secret volume, from `obj` (None: it does not exist)."""
    if v.config_map is not None:
        src_cm = v.config_map
        kind, name, items, default, optional = ("configmap", src_cm.name, src_cm.items, src_cm.default_mode,
                                                 src_cm.optional)
        missing_key = "configmap references non-existent config key: {}"
    elif v.secret is not None:
        src_s = v.secret
        kind, name, items, default, optional = ("secret", src_s.secret_name, src_s.items, src_s.default_mode,
                                                 src_s.optional)
        missing_key = "references non-existent secret key: {}"
    else:
        raise VolumeError(f"volume {v.name} is neither a configMap nor a secret volume")
    mode = DEFAULT_MODE if default is None else default
    if obj is None:
        if optional:
            return {}
        raise VolumeError(f'{kind} "{name}" not found')
    try:
        values = configmap_payload(obj) if isinstance(obj, ConfigMap) else secret_payload(obj)
    except ValueError as e:
        raise VolumeError(f'{kind} "{name}": {e}') from e
    if not items:
        return {key: File(data, mode) for key, data in values.items()}
    out: Payload = {}
    for item in items:
        if item.key not in values:
            if optional:
                continue
            raise VolumeError(missing_key.format(item.key))
        out[item.path] = File(values[item.key], mode if item.mode is None else item.mode)
    return out


def setup(volume_dir: Path, files: Payload, *, memory: bool) -> bool:
    """Write `files` into the volume (a tmpfs first when `memory`); True if anything changed."""
    if memory and not os.path.ismount(volume_dir):
        volume_dir.mkdir(parents=True, exist_ok=True)
        sc.mount("tmpfs", str(volume_dir), "tmpfs", TMPFS_FLAGS, "mode=0755")
    return write(volume_dir, files)


def _unescape(field: str) -> str:
    """Mount points in /proc/self/mountinfo escape space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(root: Path, mountinfo: str) -> list[str]:
    """Mount points strictly below `root` in a mountinfo text, deepest first (pure)."""
    prefix = str(root).rstrip("/") + "/"
    found = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            point = _unescape(fields[4])
            if point.startswith(prefix):
                found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def unmount_under(root: Path) -> None:
    """Unmount every mount below `root` (lazily: a dying container may still hold one)."""
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return
    for point in mounts_under(root, text):
        try:
            sc.umount2(point, sc.MNT_DETACH)
        except OSError as e:
            if e.errno not in (2, 22):  # gone already, or not a mount point any more
                raise
