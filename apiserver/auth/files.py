"""Private files: how every secret of the cluster reaches the disk.

Invariants:

* A secret file is created with mode 0600 from its first byte: it is written to a temporary
  file opened with `O_CREAT | O_EXCL` and mode 0600 in the same directory, fsynced, then
  renamed over the target. A reader never sees a half-written file, and there is no moment
  at which the content is readable by anyone but the owner (no chmod after the fact).
* Directories that hold secrets are created 0700.
* The umask cannot widen these modes: `os.open` applies it, and it can only clear bits.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_FILE_MODE = 0o600
SECRET_DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) as 0700 if missing; an existing directory keeps its mode."""
    path.mkdir(parents=True, exist_ok=True, mode=SECRET_DIR_MODE)
    return path


def write_private(path: Path, data: bytes | str) -> Path:
    """Write `data` to `path` atomically, mode 0600 (see the module invariants)."""
    raw = data.encode() if isinstance(data, str) else data
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, SECRET_FILE_MODE)  # in case the file system ignored the mode on creation
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
