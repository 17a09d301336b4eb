"""What the VMs are made of, built once and cached under CACHE (reused between runs):

    host packages   qemu, debootstrap, mkfs.ext4 (apt, only when missing)
    wheelhouse      kubelite's Python dependencies as wheels, built on the host with pip, so
                    that provisioning installs offline (the guest runs Debian 12's Python 3.11,
                    like the host, so the host's wheels fit)
    base image      Debian 12 from Debian's packages (debootstrap minbase + the packages of
                    deploy/provision/apt-packages.txt + a kernel), as an ext4 image made with
                    `mkfs.ext4 -d` (no loop mount), plus the kernel and initrd to boot it with
                    qemu's -kernel/-initrd (the initrd loads virtio_blk for the root disk)

A cache entry is named by a hash of what it is made from, so a change to the package list or
to the baked guest files builds a new one instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE = Path(os.environ.get("KUBELITE_VMTEST_CACHE", "/var/cache/kubelite-vmtest"))
DEPLOY = Path(__file__).resolve().parent.parent
REPO = DEPLOY.parent
GUEST = Path(__file__).resolve().parent / "guest"

HOST_PACKAGES = ("qemu-system-x86", "qemu-utils", "debootstrap", "e2fsprogs", "iproute2", "python3-venv")
MIRROR = os.environ.get("KUBELITE_VMTEST_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
# Beyond what provisioning installs: an init, a kernel (its initramfs comes with it), and
# util-linux's mountpoint for the boot script.
BASE_PACKAGES = ("systemd-sysv", "linux-image-amd64", "util-linux", "iputils-ping")
IMAGE_SIZE = "4G"


class BuildError(Exception):
    """A step of building the VMs' ingredients failed."""


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, raising BuildError with its output tail when it fails."""
    result: subprocess.CompletedProcess[str] = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise BuildError(f"{' '.join(cmd[:4])}... exited {result.returncode}:\n{tail}")
    return result


def ensure_host_packages() -> list[str]:
    """Install the host tools that are missing; returns what was installed."""
    missing = [p for p in HOST_PACKAGES
               if subprocess.run(["dpkg", "-s", p], capture_output=True, check=False).returncode != 0]
    if missing:
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return missing


def provision_packages() -> list[str]:
    """The guest's run-time packages, from the same list provisioning installs."""
    text = (DEPLOY / "provision" / "apt-packages.txt").read_text()
    return [w for line in text.splitlines() for w in re.sub(r"#.*", "", line).split()]


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()[:12]


def ensure_wheelhouse() -> Path:
    """A directory of wheels for kubelite's dependencies (not kubelite itself: the guests build it
    from the share, as they would from Vagrant's synced folder), plus the build backend."""
    pyproject = (REPO / "pyproject.toml").read_bytes()
    wheelhouse = CACHE / f"wheelhouse-{_digest(pyproject)}"
    if (wheelhouse / ".complete").exists():
        return wheelhouse
    pip_venv = CACHE / "pip-venv"
    if not (pip_venv / "bin" / "pip").exists():
        run(["python3", "-m", "venv", str(pip_venv)])
    pip = [str(pip_venv / "bin" / "pip"), "--disable-pip-version-check", "-q"]
    staging = Path(tempfile.mkdtemp(prefix="wheelhouse-", dir=CACHE))
    try:
        # `pip wheel` resolves the dependencies from pyproject.toml and leaves one wheel per
        # distribution, building any that PyPI ships only as source.
        with tempfile.TemporaryDirectory(prefix="kubelite-src-") as src:
            shutil.copy2(REPO / "pyproject.toml", src)
            shutil.copy2(REPO / "README.md", src)
            run([*pip, "wheel", "--wheel-dir", str(staging), src])
        run([*pip, "download", "--dest", str(staging), "--only-binary", ":all:", "setuptools>=68", "wheel"])
        for built in staging.glob("kubelite-*.whl"):
            built.unlink()
        (staging / ".complete").touch()
        shutil.rmtree(wheelhouse, ignore_errors=True)
        staging.rename(wheelhouse)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return wheelhouse


@dataclass(frozen=True)
class BaseImage:
    disk: Path  # raw ext4, the backing file of every VM's qcow2 overlay
    kernel: Path
    initrd: Path


def ensure_base_image() -> BaseImage:
    packages = sorted({*BASE_PACKAGES, *provision_packages()})
    baked = sorted(GUEST.glob("kubelite-vmtest*"))
    key = _digest(SUITE.encode(), " ".join(packages).encode(), *(p.read_bytes() for p in baked))
    home = CACHE / f"base-{SUITE}-{key}"
    image = BaseImage(home / "root.img", home / "vmlinuz", home / "initrd.img")
    if (home / ".complete").exists():
        return image
    shutil.rmtree(home, ignore_errors=True)
    rootfs = home / "rootfs"
    rootfs.mkdir(parents=True)
    try:
        run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE, str(rootfs), MIRROR])
        _configure(rootfs)
        kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
        initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise BuildError(f"no kernel or initrd under {rootfs / 'boot'}")
        shutil.copy2(kernels[-1], image.kernel)
        shutil.copy2(initrds[-1], image.initrd)
        run(["mkfs.ext4", "-q", "-F", "-L", "kubelite-root", "-d", str(rootfs), str(image.disk), IMAGE_SIZE])
        (home / ".complete").touch()
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return image


def _configure(rootfs: Path) -> None:
    """The few files that make the debootstrapped tree a bootable VM that provisions itself."""
    (rootfs / "etc" / "fstab").write_text("/dev/vda / ext4 rw,errors=remount-ro 0 1\n")
    # Each boot generates its own machine id (the VMs share one image); the hostname comes
    # from the kernel command line (systemd.hostname=).
    (rootfs / "etc" / "machine-id").write_text("")
    (rootfs / "etc" / "hostname").unlink(missing_ok=True)
    (rootfs / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    unit = rootfs / "etc" / "systemd" / "system" / "kubelite-vmtest.service"
    shutil.copy2(GUEST / "kubelite-vmtest.service", unit)
    wants = rootfs / "etc" / "systemd" / "system" / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / unit.name).unlink(missing_ok=True)
    (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")
    boot = rootfs / "usr" / "local" / "sbin" / "kubelite-vmtest-boot"
    shutil.copy2(GUEST / "kubelite-vmtest-boot", boot)
    boot.chmod(0o755)
    # Debian enables etcd on install; kubelite server runs its own (provisioning disables it
    # too, this only saves a start of the wrong etcd on first boot).
    (rootfs / "etc" / "systemd" / "system" / "multi-user.target.wants" / "etcd.service").unlink(missing_ok=True)
    run(["chroot", str(rootfs), "apt-get", "clean"])
