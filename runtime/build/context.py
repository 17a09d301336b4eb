"""The build context: which files COPY/ADD may read, their content hash, and copying them.

Invariants:
- sources are read only from inside the context directory: `..`, and symlinks
  in a source's path that lead outside, are refused ("forbidden path outside
  the build context"); symlinks inside copied trees are copied as symlinks,
  never followed;
- files matched by .dockerignore are invisible: not copied, not hashed;
- copying writes only below the staging directory and never through a symlink
  placed there by an earlier source;
- `content_hash` covers names, types, modes, symlink targets and file bytes
  of everything a COPY would copy, so it changes exactly when the copy would.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import re
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime.images.errors import ImageError

GLOB_CHARS = re.compile(r"[*?\[]")


class ContextError(ImageError):
    """A COPY/ADD source that is missing, ignored or outside the context."""


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    exclude: bool  # False for "!pattern" exceptions


def _glob_to_regex(pattern: str) -> str:
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):  # "**/" matches zero or more directories
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


class DockerIgnore:
    """.dockerignore rules: the last matching pattern wins; a match on a directory covers its content."""

    def __init__(self, lines: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclude = not line.startswith("!")
            line = line.lstrip("!").strip()
            line = posixpath.normpath(line).lstrip("/")
            if line in (".", ""):
                continue
            self.patterns.append(_Pattern(re.compile(f"^{_glob_to_regex(line)}$"), exclude))

    @classmethod
    def load(cls, context: Path) -> DockerIgnore:
        path = context / ".dockerignore"
        return cls(path.read_text().splitlines() if path.is_file() else [])

    def ignored(self, rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for p in self.patterns:
            if any(p.regex.match(prefix) for prefix in prefixes):
                result = p.exclude
        return result


class BuildContext:
    """A directory as seen by COPY/ADD through its .dockerignore."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.ignore = DockerIgnore.load(self.root)

    def _checked(self, rel: str) -> Path:
        norm = posixpath.normpath(rel.lstrip("/")) if rel.strip("/") else "."
        if norm == ".." or norm.startswith("../"):
            raise ContextError(f"forbidden path outside the build context: {rel}")
        path = self.root / norm
        real_parent = os.path.realpath(self.root / posixpath.dirname(norm))
        if real_parent != str(self.root) and not real_parent.startswith(str(self.root) + os.sep):
            raise ContextError(f"forbidden path outside the build context: {rel} (through a symlink)")
        return path

    def resolve_sources(self, patterns: list[str]) -> list[str]:
        """Context-relative paths of the sources, globs expanded, ignored files dropped."""
        out: list[str] = []
        for pattern in patterns:
            self._checked(pattern)
            norm = posixpath.normpath(pattern.lstrip("/")) if pattern.strip("/") else "."
            if GLOB_CHARS.search(norm):
                matches = [rel for rel in self._all_paths() if fnmatch.fnmatchcase(rel, norm)
                           and rel.count("/") == norm.count("/")]  # fmt: skip
            else:
                exists = os.path.lexists(self.root / norm)
                matches = [norm] if exists and (norm == "." or not self.ignore.ignored(norm)) else []
            if not matches:
                raise ContextError(f"COPY failed: no source files were specified by {pattern!r} "
                                   "(missing, or excluded by .dockerignore)")  # fmt: skip
            out.extend(sorted(matches))
        return out

    def _all_paths(self) -> Iterator[str]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in sorted(dirnames + filenames):
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if not self.ignore.ignored(rel):
                    yield rel

    def walk(self, rel: str) -> Iterator[tuple[str, Path]]:
        """(path relative to `rel`, absolute path) of `rel` and everything below it, sorted, unignored."""
        top = self._checked(rel)
        yield "", top
        if not top.is_dir() or top.is_symlink():
            return
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                path = Path(dirpath) / name
                ctx_rel = os.path.relpath(path, self.root)
                if self.ignore.ignored(ctx_rel):
                    if name in dirnames:
                        dirnames.remove(name)
                    continue
                yield os.path.relpath(path, top), path

    def content_hash(self, sources: list[str]) -> str:
        h = hashlib.sha256()
        for src in sources:
            for rel, path in self.walk(src):
                st = os.lstat(path)
                h.update(f"{src}\0{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
                if stat.S_ISLNK(st.st_mode):
                    h.update(os.readlink(path).encode())
                elif stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as f:
                        while chunk := f.read(1 << 20):
                            h.update(chunk)
                h.update(b"\0")
        return "sha256:" + h.hexdigest()


def safe_dest(staging: Path, rel: str, *, create_parents: bool = True) -> Path:
    """`staging/rel`, refusing any existing symlink on the way (no writes through links)."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ContextError(f"destination {rel} escapes the image root")
    cur = staging
    for part in parts[:-1]:
        cur = cur / part
        if cur.is_symlink():
            raise ContextError(f"cannot copy to {rel}: {cur.relative_to(staging)} is a symlink")
        if not cur.exists() and create_parents:
            cur.mkdir(mode=0o755)
            os.chown(cur, 0, 0)
    return cur / parts[-1] if parts else staging


def copy_entry(src: Path, dest: Path, *, uid: int, gid: int, chmod: int | None) -> None:
    """Copy one file, symlink or (empty) directory node to `dest`, owned by uid:gid."""
    st = os.lstat(src)
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        dest.unlink()
    if stat.S_ISDIR(st.st_mode):
        if not dest.exists():
            dest.mkdir()
        os.chmod(dest, chmod if chmod is not None else stat.S_IMODE(st.st_mode))
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dest)
    elif stat.S_ISREG(st.st_mode):
        shutil.copy2(src, dest, follow_symlinks=False)
        if chmod is not None:
            os.chmod(dest, chmod)
    else:
        raise ContextError(f"cannot copy {src}: not a regular file, directory or symlink")
    os.chown(dest, uid, gid, follow_symlinks=False)
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
