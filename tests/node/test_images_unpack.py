"""Layer extraction against malicious and tricky archives, on the real file system."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.images.unpack import OPAQUE_XATTR, UnpackError, unpack_layer
from tests.node.test_images_fixtures import kltest_dir, make_tar, member, needs_root, snapshot

__all__ = ["kltest_dir"]  # a fixture, imported for pytest

pytestmark = [pytest.mark.root, needs_root]

REG, DIR, SYM, LNK, CHR, BLK = (
    tarfile.REGTYPE,
    tarfile.DIRTYPE,
    tarfile.SYMTYPE,
    tarfile.LNKTYPE,
    tarfile.CHRTYPE,
    tarfile.BLKTYPE,
)


def malicious_cases(outside: Path) -> list[tuple[str, list, str]]:
    """(case id, members, expected words in the error)."""
    evil = (member("ok"), b"fine")
    return [
        ("dotdot", [evil, (member("../evil"), b"x")], "escapes the layer directory"),
        ("nested-dotdot", [(member("a/b/../../../evil"), b"x")], "escapes the layer directory"),
        ("absolute", [(member(str(outside / "evil")), b"x")], "absolute path"),
        ("symlink-relative-escape", [member("link", SYM, link="../../outside")], "escapes the layer"),
        ("symlink-dotdot", [member("up", SYM, link="..")], "escapes the layer"),
        (
            "write-through-symlink",
            [member("link", SYM, link=str(outside)), (member("link/evil"), b"x")],
            "passes through symlink",
        ),
        (
            "write-through-inner-symlink",
            [member("d", DIR), member("d/l", SYM, link="/"), (member("d/l/evil"), b"x")],
            "passes through symlink",
        ),
        ("hardlink-dotdot", [member("h", LNK, link="../outside/sentinel")], "escapes the layer"),
        ("hardlink-absolute", [member("h", LNK, link=str(outside / "sentinel"))], "absolute path"),
        (
            "hardlink-to-symlink",
            [member("s", SYM, link=str(outside / "sentinel")), member("h", LNK, link="s")],
            "not a regular file",
        ),
        ("hardlink-missing", [member("h", LNK, link="nothere")], "not in this layer"),
        ("char-device", [member("null", CHR, major=1, minor=3)], "character device 1:3"),
        ("block-device", [member("sda", BLK, major=8, minor=0)], "block device 8:0"),
        ("whiteout-dotdot", [member(".wh..")], "invalid name"),
    ]


CASE_IDS = [c[0] for c in malicious_cases(Path("/x"))]


@pytest.mark.parametrize("case", CASE_IDS)
def test_malicious_layer_is_refused_and_nothing_outside_changes(kltest_dir: Path, case: str) -> None:
    outside = kltest_dir / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("keep")
    layers = kltest_dir / "store" / "layers"
    layers.mkdir(parents=True)
    before = snapshot(kltest_dir)
    _, entries, words = next(c for c in malicious_cases(outside) if c[0] == case)
    dest = layers / "abc"
    with pytest.raises(UnpackError) as err:
        unpack_layer(io.BytesIO(make_tar(entries)), dest, label="sha256:abc")
    assert words in str(err.value)
    assert str(err.value).startswith("failed to unpack layer sha256:abc: member ")
    assert not dest.exists()
    assert snapshot(kltest_dir) == before  # no partial layer, no temp dir, nothing outside


def test_regular_layer_with_links_whiteouts_and_opaque_dirs(kltest_dir: Path) -> None:
    data = make_tar(
        [
            member("etc", DIR),
            (member("etc/hosts", mode=0o4755), b"127.0.0.1 localhost\n"),
            member("etc/hosts.hard", LNK, link="etc/hosts"),
            member("bin", DIR),
            member("bin/sh", SYM, link="/bin/busybox"),
            member("lib", SYM, link="usr/lib"),
            member("usr/lib/x", SYM, link="../../lib/y"),  # climbs to the root, not above
            member("gone/.wh.file"),
            member("opaque", DIR),
            member("opaque/.wh..wh..opq"),
            (member("opaque/new"), b"n"),
            member("fifo", tarfile.FIFOTYPE),
            member("dev/wh", CHR),  # an overlay-style whiteout already: char 0/0
        ]
    )
    dest = kltest_dir / "layer"
    unpack_layer(io.BytesIO(data), dest, label="sha256:ok")
    assert (dest / "etc/hosts").read_text() == "127.0.0.1 localhost\n"
    assert stat.S_IMODE(os.stat(dest / "etc/hosts").st_mode) == 0o4755
    assert os.stat(dest / "etc/hosts").st_ino == os.stat(dest / "etc/hosts.hard").st_ino
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    whiteout = os.lstat(dest / "gone/file")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert not (dest / "gone/.wh.file").exists()
    assert os.getxattr(dest / "opaque", OPAQUE_XATTR) == b"y"
    assert (dest / "opaque/new").read_text() == "n"
    assert not (dest / "opaque/.wh..wh..opq").exists()
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)
    assert os.lstat(dest / "dev/wh").st_rdev == 0


def test_directory_replaced_by_symlink_keeps_outside_metadata(kltest_dir: Path) -> None:
    """Directory metadata is applied last; by then the name may be a symlink, which must not be followed."""
    outside = kltest_dir / "outside"
    outside.mkdir(mode=0o755)
    os.chmod(outside, 0o755)
    data = make_tar([member("d", DIR, mode=0o777), member("d", SYM, link=str(outside))])
    unpack_layer(io.BytesIO(data), kltest_dir / "layer", label="sha256:x")
    assert os.readlink(kltest_dir / "layer/d") == str(outside)
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o755


def test_xattrs_user_and_capabilities_kept_trusted_dropped(kltest_dir: Path) -> None:
    info = member("ping", mode=0o755)
    info.pax_headers = {
        "SCHILY.xattr.user.note": "hello",
        "SCHILY.xattr.trusted.overlay.redirect": "/etc",
        "SCHILY.xattr.trusted.overlay.opaque": "y",
    }
    dest = kltest_dir / "layer"
    unpack_layer(io.BytesIO(make_tar([(info, b"bin")])), dest, label="sha256:x")
    assert os.getxattr(dest / "ping", "user.note") == b"hello"
    assert not [a for a in os.listxattr(dest / "ping") if a.startswith("trusted.")]


_components = st.sampled_from(["a", "b", "..", ".", "", "c d", ".wh.a", ".wh..wh..opq"])
_paths = st.lists(_components, min_size=1, max_size=4).map("/".join) | st.just("/abs")
_entries = st.lists(
    st.tuples(st.sampled_from([REG, DIR, SYM, LNK, CHR]), _paths, _paths, st.integers(0, 2)),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(entries=_entries)
def test_any_archive_writes_only_inside_the_layer_dir(kltest_dir: Path, entries: list) -> None:
    """Whatever the members, extraction succeeds or raises UnpackError, and writes only in dest."""
    outside = kltest_dir / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "sentinel").write_text("keep")
    work = kltest_dir / "work"
    work.mkdir(exist_ok=True)
    before = snapshot(kltest_dir)
    members = []
    for kind, name, link, dev in entries:
        info = member(name or "x", kind, link=link, minor=dev)
        members.append((info, b"data") if kind == REG else info)
    dest = work / "layer"
    shutil.rmtree(dest, ignore_errors=True)  # left by a failing example hypothesis shrinks
    try:
        unpack_layer(io.BytesIO(make_tar(members)), dest, label="sha256:h")
    except UnpackError:
        assert not dest.exists()
    after = snapshot(kltest_dir)
    outside_paths = {p for p in after if not p.startswith(str(dest) + "/")}
    assert {p: after[p] for p in outside_paths if p != str(dest)} == {p: v for p, v in before.items()}
    for path in after:
        if path.startswith(str(dest) + "/"):
            rel = os.path.relpath(path, dest)
            assert not rel.startswith("..")
    shutil.rmtree(dest, ignore_errors=True)
