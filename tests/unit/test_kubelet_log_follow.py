"""`logs -f` follows a container's log file as it grows and across rotation, as the kubelet does."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from kubelet.logs import LogOptions, follow_log


def record(text: str) -> str:
    return f"2026-11-28T10:00:00.000000000Z stdout F {text}\n"


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


async def test_a_follower_goes_on_in_the_new_file_after_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_text(record("one"))
    finished = False
    got: list[bytes] = []

    async def follow() -> None:
        async for chunk in follow_log(log, LogOptions(follow=True), done=lambda: finished, now=0, poll=0.01):
            got.append(chunk)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    append(log, record("two") + record("thr")[:-4])  # appended, and a record split over two writes
    await asyncio.sleep(0.05)
    append(log, record("thr")[-4:])
    await asyncio.sleep(0.05)
    append(log, record("four"))  # the last record of the old file, then the writer rotates
    os.rename(log, f"{log}.1")
    log.write_text(record("five"))
    await asyncio.sleep(0.05)
    append(log, record("six"))
    await asyncio.sleep(0.05)
    finished = True
    await asyncio.wait_for(task, 5)
    assert b"".join(got) == b"one\ntwo\nthr\nfour\nfive\nsix\n"


async def test_without_follow_only_the_current_file_is_read(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    Path(f"{log}.1").write_text(record("old"))
    log.write_text(record("new"))
    out = [c async for c in follow_log(log, LogOptions(), done=lambda: True, now=0)]
    assert out == [b"new\n"]
