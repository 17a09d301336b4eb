"""Make `busybox:latest` from Debian's busybox-static, with no network.

The rootfs holds /bin/busybox, one relative symlink per applet at the path
`busybox --list-full` gives, /etc/passwd and /etc/group (root and nobody), /tmp
(1777) and the usual empty mount points. All timestamps are set to the binary's
mtime and the created time derives from it too, so the same busybox package
always yields the same image digest.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from runtime.images.config import ImageConfig
from runtime.images.errors import ImageError
from runtime.images.importer import DEFAULT_PATH, import_rootfs
from runtime.images.store import ImageStore

BUSYBOX = Path("/bin/busybox")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"
DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "home", "var", "root", "tmp")


class BusyboxError(ImageError):
    """busybox-static missing or unusable."""


def make_busybox_rootfs(dest: Path, *, busybox: Path = BUSYBOX) -> None:
    """Lay out a busybox root file system in the existing empty directory `dest`."""
    if not busybox.is_file():
        raise BusyboxError(f"{busybox} not found: install it with `apt-get install busybox-static`")
    try:
        applets = subprocess.run(
            [str(busybox), "--list-full"], check=True, capture_output=True, text=True, timeout=10
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as err:
        raise BusyboxError(f"failed to list applets of {busybox}: {err}") from err
    for d in DIRS:
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chmod(dest / "root", 0o700)
    shutil.copy2(busybox, dest / "bin/busybox")
    os.chmod(dest / "bin/busybox", 0o755)
    for applet in applets:
        path = dest / applet
        if applet == "bin/busybox" or path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath("bin/busybox", os.path.dirname(applet) or "."), path)
    (dest / "etc/passwd").write_text(PASSWD)
    (dest / "etc/group").write_text(GROUP)
    mtime = int(busybox.stat().st_mtime)
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (mtime, mtime), follow_symlinks=False)


def import_busybox(store: ImageStore, *, tag: str = "busybox:latest", busybox: Path = BUSYBOX) -> str:
    """Create (or recreate, identically) the busybox image; returns its manifest digest."""
    staging = Path(tempfile.mkdtemp(prefix="busybox-", dir=store.root / "tmp"))
    try:
        make_busybox_rootfs(staging, busybox=busybox)
        created = datetime.datetime.fromtimestamp(int(busybox.stat().st_mtime), datetime.UTC)
        config = ImageConfig(env=(f"PATH={DEFAULT_PATH}",), cmd=("sh",))
        return import_rootfs(
            store,
            staging,
            tags=[tag],
            config=config,
            created=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            created_by=f"kubelite image import --busybox ({busybox})",
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
