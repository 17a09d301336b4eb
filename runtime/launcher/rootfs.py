"""Mount steps of a container's root filesystem, run inside its new mount namespace.

All paths here are host paths under ``root`` (the overlay mount point) until
``pivot`` runs. Destinations inside the rootfs are resolved with ``secure_join`` so a
symlink in an image (``/etc -> /host/etc``) can never redirect a mount outside it.
Every mount made here vanishes with the mount namespace: nothing to undo on the host.
"""

from __future__ import annotations

import os
import stat

from runtime import syscalls as sc

# Docker's masked and read-only paths (moby oci/defaults.go), restated.
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# (name, major, minor): the character devices of a minimal /dev.
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9),
           ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore"))


def secure_join(root: str, path: str) -> str:
    """``root``/``path`` with every symlink resolved as if ``root`` were ``/``."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError:
            resolved.append(part)
            continue
        hops += 1
        if hops > 40:
            raise OSError(40, f"too many symlinks resolving {path}")
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return os.path.join(root, *resolved)


def mount_overlay(root: str, lowerdirs: list[str], upperdir: str, workdir: str) -> None:
    """lowerdirs are top-most first, as overlayfs's lowerdir= option wants them."""
    data = f"lowerdir={':'.join(lowerdirs)},upperdir={upperdir},workdir={workdir}"
    sc.mount("overlay", root, "overlay", 0, data)


def bind(root: str, source: str, destination: str, read_only: bool) -> None:
    """Bind ``source`` (a host path) onto ``destination`` inside the rootfs, creating the mount point."""
    target = secure_join(root, destination)
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    sc.mount(source, target, None, sc.MS_BIND | sc.MS_REC)
    if read_only:
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)


def mount_proc(root: str) -> None:
    target = secure_join(root, "/proc")
    os.makedirs(target, exist_ok=True)
    sc.mount("proc", target, "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


def mount_dev(root: str, shm: str | None = None) -> None:
    """A tmpfs /dev with the usual devices; /dev/shm is the pod's shared tmpfs ``shm``
    (bound) or, without one, a tmpfs of the container's own."""
    dev = secure_join(root, "/dev")
    os.makedirs(dev, exist_ok=True)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        path = f"{dev}/{name}"
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)  # mknod honours the umask
    for name, target in DEV_LINKS:
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts")
    sc.mount("devpts", f"{dev}/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.mkdir(f"{dev}/shm")
    if shm:
        sc.mount(shm, f"{dev}/shm", None, sc.MS_BIND)
    else:
        sc.mount("shm", f"{dev}/shm", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
                 "mode=1777,size=65536k")


def mount_sys(root: str) -> None:
    target = secure_join(root, "/sys")
    os.makedirs(target, exist_ok=True)
    sc.mount("sysfs", target, "sysfs", sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


def mask_paths(root: str) -> None:
    """Hide what Docker hides: files behind /dev/null, directories behind an empty read-only tmpfs."""
    null = f"{root}/dev/null"
    for path in MASKED_PATHS:
        target = f"{root}{path}"
        if os.path.isdir(target):
            sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY)
        elif os.path.exists(target):
            sc.mount(null, target, None, sc.MS_BIND)
    for path in READONLY_PATHS:
        target = f"{root}{path}"
        if os.path.exists(target):
            sc.mount(target, target, None, sc.MS_BIND | sc.MS_REC)
            sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)


def pivot(root: str) -> None:
    """Make ``root`` the new ``/`` and detach the host's tree from this namespace.

    pivot_root(".", ".") stacks the old root on top of the new one; unmounting "."
    then removes the old root without needing a put_old directory in the image.
    """
    os.chdir(root)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
