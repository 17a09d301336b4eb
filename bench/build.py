"""Build times: a cold build and a fully cached rebuild of the introductory Dockerfile.

    .venv/bin/python bench/build.py [--runs 20]

Needs root (RUN steps are real containers). Everything lives in a kltest temp dir,
removed at the end. Figures, all in one run so they share the machine's mood:

1. anchor: `unshare -fpmui --mount-proc chroot <busybox layer> /bin/true`, start to exit,
   the cost of the cheapest possible container start here;
2. cold build: FROM busybox, WORKDIR, ENV, COPY, RUN, CMD, EXPOSE with an empty cache
   (one RUN container, two layers packed, compressed and unpacked);
3. cached rebuild: the same build again, every step a cache hit (median of --runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.build.builder import Builder
from runtime.images.busybox import import_busybox
from runtime.images.store import ImageStore

DOCKERFILE = """\
FROM busybox
WORKDIR /app
ENV GREETING=hello
COPY . .
RUN echo "$GREETING" > message.txt
CMD ["cat", "message.txt"]
EXPOSE 8080
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def unshare_anchor(root: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(["unshare", "-fpmui", "--mount-proc", "chroot", str(root), "/bin/true"], check=True)
        times.append(time.perf_counter() - t)
    return times


async def bench(runs: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="kltest-bench-build-"))
    try:
        store = ImageStore(work / "images")
        import_busybox(store)
        ctx = work / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        for i in range(20):
            (ctx / f"file{i}.txt").write_text("x" * 1000 * i)
        busybox_layer = (await store.rootfs("busybox")).lowerdirs[0]

        anchor = unshare_anchor(busybox_layer, runs)

        quiet = Builder(store, output=lambda _text: None)
        t = time.perf_counter()
        cold = await quiet.build(ctx, tags=["kltest/bench:1"])
        cold_time = time.perf_counter() - t
        assert cold.cached == 0

        cached = []
        for _ in range(runs):
            t = time.perf_counter()
            result = await quiet.build(ctx, tags=["kltest/bench:1"])
            cached.append(time.perf_counter() - t)
            assert result.cached == result.steps - 1 and result.manifest_digest == cold.manifest_digest

        print(f"anchor  unshare+chroot /bin/true (median of {runs}): {ms(statistics.median(anchor))}")
        print(f"cold build, {cold.steps} steps:                     {ms(cold_time)}")
        print(f"cached rebuild (median of {runs}):                {ms(statistics.median(cached))}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/build.py needs root: RUN steps are real containers", file=sys.stderr)
        return 2
    asyncio.run(bench(args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
