"""Runtime benchmark: container start-to-exit and supervision memory, beside crun, runc and unshare.

    sudo .venv/bin/python bench/runtime.py [--runs 50]

Measures, in the same run and on the same busybox rootfs:
- kubelite: create + start + wait for the exit of ``/bin/true`` in a container with new
  pid and mount namespaces and an overlay rootfs, joined to a pod sandbox's net/ipc/uts;
  once in an existing sandbox, once with a fresh sandbox (new net/ipc/uts) per run.
- anchors: ``unshare -fpmui --net chroot``, ``crun run`` and ``runc run`` (runc every 5th
  run: it is slow), each spawned from Python, so each anchor also pays one fork+exec of
  its own that kubelite does not. All contenders run interleaved, run by run.
- PSS of our supervision (launcher + zygote + one shim per container + the zygote's
  spare shim and its waiting init) with 1, N and 3N idle containers, and the marginal
  cost of one more.
Results go to stdout; docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime import syscalls as sc
from runtime.cgroups import open_cgroup
from runtime.container import ContainerSpec, Runtime

CGROUP_ROOT = Path("/sys/fs/cgroup")


def make_rootfs(root: Path) -> None:
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "true", "sleep"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")


def ms(samples: list[float]) -> str:
    p90 = sorted(samples)[int(len(samples) * 0.9)]
    return f"median {statistics.median(samples) * 1000:6.2f} ms  p90 {p90 * 1000:6.2f} ms"


async def bench_start_to_exit(work: Path, rootfs: Path, runs: int, bundle: Path | None) -> dict[str, list[float]]:
    """All contenders interleaved run by run, so load from other processes hits each alike."""
    parent = f"kltest-bench-{secrets.token_hex(3)}"
    rt = await Runtime.open(work / "kubelite", cgroup_root=CGROUP_ROOT, cgroup_parent=parent)
    results: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    spec = ContainerSpec(name="true", argv=["/bin/true"], lowerdirs=[str(rootfs)])
    try:
        sb = await rt.create_sandbox("kltest-bench-pod", "bench", hostname="bench")
        for i in range(runs + 3):
            samples: dict[str, float] = {}
            t0 = time.perf_counter()
            c = await rt.create_container(sb, spec)
            await rt.start(c.id)
            await rt.wait(c.id)
            samples[CONTENDERS[0]] = time.perf_counter() - t0
            assert rt.status(c.id).exit_code == 0
            await rt.remove(c.id)

            t0 = time.perf_counter()
            pod = await rt.create_sandbox(f"kltest-bench-{i}", f"b{i}", hostname=f"b{i}")
            c = await rt.create_container(pod, spec)
            await rt.start(c.id)
            await rt.wait(c.id)
            samples[CONTENDERS[1]] = time.perf_counter() - t0
            await rt.remove_sandbox(pod.pod_uid)

            samples[CONTENDERS[2]] = timed(["unshare", "-fpmui", "--net", "chroot", str(rootfs), "/bin/true"])
            if bundle is not None:
                samples[CONTENDERS[3]] = timed(["crun", "run", "-b", str(bundle), f"kltest-bench-{i}"])
                if i % 5 == 0:
                    samples[CONTENDERS[4]] = timed(["runc", "run", "-b", str(bundle), f"kltest-bench-{i}"])
            if i >= 3:  # warm-up
                for name, value in samples.items():
                    results[name].append(value)
        await rt.remove_sandbox(sb.pod_uid)
    finally:
        await rt.close()
        await rt.shutdown_launcher()
        open_cgroup(CGROUP_ROOT, parent).remove()
    return {name: values for name, values in results.items() if values}


CONTENDERS = ("kubelite (pod sandbox exists)", "kubelite (new pod sandbox too)",
              "unshare -fpmui --net chroot", "crun run", "runc run")


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def private_mount_namespace() -> None:
    """Debian's crun 1.8.1 refuses this host's hybrid cgroups; in a private mount namespace
    with the (nearly empty) unified mount hidden it sees plain v1. Everything in this
    process, kubelite included, then runs in that namespace, so all pay the same."""
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    try:
        sc.umount2("/sys/fs/cgroup/unified", sc.MNT_DETACH)
    except OSError:
        pass


async def bench_pss(work: Path, rootfs: Path, counts: list[int]) -> dict[int, float]:
    """Total PSS (KiB) of launcher + zygote + shims with each of ``counts`` idle containers."""
    parent = f"kltest-bench-{secrets.token_hex(3)}"
    rt = await Runtime.open(work / "pss", cgroup_root=CGROUP_ROOT, cgroup_parent=parent)
    totals: dict[int, float] = {}
    try:
        sb = await rt.create_sandbox("kltest-bench-pss", "pss", hostname="pss")
        spec = ContainerSpec(name="idle", argv=["/bin/sleep", "3600"], lowerdirs=[str(rootfs)])
        shims: list[int] = []
        for count in counts:
            while len(shims) < count:
                st = await rt.start((await rt.create_container(sb, spec)).id)
                assert st.shim_pid is not None
                shims.append(st.shim_pid)
            await asyncio.sleep(0.5)
            ping = await rt.launcher.request({"op": "ping"})
            ours = supervision_pids(int(ping["pid"]), set(shims))
            totals[count] = sum(pss_kib(p) for p in ours)
        await rt.remove_sandbox(sb.pod_uid)
        return totals
    finally:
        await rt.close()
        await rt.shutdown_launcher()
        open_cgroup(CGROUP_ROOT, parent).remove()


def supervision_pids(launcher: int, shims: set[int]) -> list[int]:
    """The launcher, the zygote, the shims and the zygote's spare shim with its waiting
    init: every Python process under the launcher (a container's exec'd init is the
    workload, not supervision). Shims are found by pid too: they leave the launcher's
    process tree when a new launcher takes over, not in this benchmark."""
    parents: dict[int, int] = {}
    exes: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
                exes[int(entry)] = os.readlink(f"/proc/{entry}/exe")
            except OSError:
                continue
            parents[int(entry)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
    python = os.path.realpath(sys.executable)

    def under_launcher(pid: int) -> bool:
        while pid > 1:
            if pid == launcher:
                return True
            pid = parents.get(pid, 0)
        return False

    return [p for p in parents if (p in shims or under_launcher(p)) and exes.get(p) == python]


def pss_kib(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return float(line.split()[1])
    raise RuntimeError(f"no Pss for {pid}")


def oci_bundle(work: Path, rootfs: Path) -> Path:
    bundle = work / "bundle"
    bundle.mkdir()
    subprocess.run(["crun", "spec", "-b", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(rootfs), "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--idle", type=int, default=10, help="idle containers for the PSS figures (and 3x)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/runtime.py needs root (namespaces, mounts, cgroups)")
    work = Path(tempfile.mkdtemp(prefix="kltest-bench-"))
    try:
        rootfs = work / "rootfs"
        make_rootfs(rootfs)
        private_mount_namespace()
        bundle = oci_bundle(work, rootfs) if shutil.which("crun") and shutil.which("runc") else None
        results = asyncio.run(bench_start_to_exit(work, rootfs, args.runs, bundle))
        print(f"start-to-exit of /bin/true, {args.runs} runs, {os.cpu_count()} cpus:")
        for name, samples in results.items():
            print(f"  {name:34s} {ms(samples)}")
        counts = [1, args.idle, 3 * args.idle]
        totals = asyncio.run(bench_pss(work, rootfs, counts))
        marginal = (totals[counts[2]] - totals[counts[1]]) / (counts[2] - counts[1])
        print("supervision PSS (launcher + zygote + shims + spare), idle `sleep` containers:")
        for n in counts:
            total = totals[n] / 1024
            print(f"  {n:3d} containers: total {total:6.2f} MiB, per container {total / n:5.2f} MiB")
        print(f"  marginal cost of one more container: {marginal / 1024:.2f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
