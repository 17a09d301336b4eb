"""`deploy/vm-test`: build, boot, provision and check the cluster; print a timing per phase.

Exit status 0 when every check passed, 1 when one failed, 2 when the run could not be set up.
The VMs and the network namespace are removed on every exit path, ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from vmtest import checks, image
from vmtest.checks import CheckFailed, Kubectl, wait_for
from vmtest.image import CACHE, REPO, BuildError
from vmtest.machines import Machine, Network, cluster_specs

RUN_DIR = CACHE / "run"
# The repository as Vagrant would sync it, minus VCS data, venvs and caches. (Patterns match a
# name at any depth, so no plain "build": runtime/build is a package.)
SHARE_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache",
                                      ".pytest_cache", ".hypothesis", ".cluster", "wheelhouse")
# Like KUBELITE_SERVER_ARGS for `vagrant up`: evict pods from an unreachable node after 30s
# instead of 5m, so the power-off check does not wait for minutes.
SERVER_ARGS = "--pod-eviction-timeout 30s"
REPLICAS = 4

TIMINGS: list[tuple[str, float]] = []


@contextmanager
def phase(title: str) -> Iterator[None]:
    print(f"==> {title}", flush=True)
    start = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - start
        TIMINGS.append((title, elapsed))
        print(f"    [{elapsed:6.1f}s] {title}", flush=True)


def say(text: str) -> None:
    print(f"    {text}", flush=True)


def _default_kubectl() -> str | None:
    for candidate in (shutil.which("kubectl"), Path(sys.prefix, "bin", "kubectl"), REPO / ".venv" / "bin" / "kubectl"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="deploy/vm-test", description=__doc__)
    p.add_argument("--kubectl", default=_default_kubectl(), help="kubectl binary (default: on PATH, else the venv's)")
    p.add_argument("--keep", action="store_true", help=f"keep {RUN_DIR} (logs, overlays) after the run")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached base image and wheelhouse")
    p.add_argument("--provision-timeout", type=float, default=3600, help="seconds for all VMs to provision")
    return p.parse_args(argv)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("deploy/vm-test must run as root (network namespaces, taps, debootstrap)", file=sys.stderr)
        return 2
    if args.kubectl is None:
        print("no kubectl found: put one on PATH or pass --kubectl (`make venv` installs one)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _sigterm)
    started = time.monotonic()
    specs = cluster_specs(workers=2)
    network = Network(specs)
    machines: list[Machine] = []
    status = 1
    try:
        with phase("host packages"):
            installed = image.ensure_host_packages()
            say(f"installed: {' '.join(installed)}" if installed else "all present")
        if args.rebuild:
            for old in [*CACHE.glob("base-*"), *CACHE.glob("wheelhouse-*")]:
                shutil.rmtree(old)
        with phase("wheelhouse (pip on the host, cached)"):
            wheelhouse = image.ensure_wheelhouse()
            say(f"{wheelhouse}: {len(list(wheelhouse.glob('*.whl')))} wheels")
        with phase("Debian 12 base image (debootstrap, cached)"):
            base = image.ensure_base_image()
            say(f"{base.disk} ({base.disk.stat().st_blocks * 512 >> 20} MiB used), kernel {base.kernel.name}")
        with phase("shared folder (the repository, as Vagrant syncs it)"):
            share = _prepare_share(wheelhouse)
            say(f"{share} -> /vagrant in every VM")
        with phase("network namespace and VMs started"):
            network.create()
            machines = [Machine(spec, image=base, share=share, run_dir=RUN_DIR) for spec in specs]
            for machine in machines:
                machine.start()
            say(", ".join(f"{m.spec.name} {m.spec.ip} ({m.spec.memory_mb} MiB)" for m in machines))
        with phase("boot and provisioning (common.sh, control-plane.sh / worker.sh)"):
            _wait_provisioned(machines, share, timeout=args.provision_timeout)
        status = _check_cluster(args, machines, share)
    except (BuildError, RuntimeError, OSError) as err:
        print(f"\nFAILED to set up: {err}", file=sys.stderr)
        status = 2
    except CheckFailed as err:
        print(f"\nFAILED: {err}", file=sys.stderr)
        _diagnose(args, machines)
        status = 1
    except KeyboardInterrupt as err:
        print(f"\ninterrupted ({err or 'ctrl-C'}), cleaning up", file=sys.stderr)
        status = 130
    finally:
        with phase("cleanup (VMs off, namespace deleted)"):
            for machine in machines:
                machine.power_off()
            network.destroy()
            if not args.keep and status == 0:
                shutil.rmtree(RUN_DIR, ignore_errors=True)
        _summary(status, time.monotonic() - started)
    return status


def _prepare_share(wheelhouse: Path) -> Path:
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    RUN_DIR.mkdir(parents=True)
    share = RUN_DIR / "share"
    shutil.copytree(REPO, share, ignore=SHARE_IGNORE, symlinks=True)
    shutil.copytree(wheelhouse, share / "deploy" / "wheelhouse")
    (share / ".vmtest").mkdir()
    (share / ".vmtest" / "env").write_text(f'KUBELITE_SERVER_ARGS="{SERVER_ARGS}"\n')
    return share


def _wait_provisioned(machines: list[Machine], share: Path, *, timeout: float) -> None:
    pending = {m.spec.name: m for m in machines}
    deadline = time.monotonic() + timeout
    while pending:
        for name, machine in list(pending.items()):
            marker = share / ".vmtest" / f"{name}.provisioned"
            if marker.exists() and marker.read_text().strip():
                rc = marker.read_text().strip()
                log = share / ".vmtest" / f"{name}.log"
                say(f"{name} provisioned after {time.monotonic() - machine.started:.0f}s (exit {rc}); "
                    + "; ".join(line for line in log.read_text().splitlines() if line.startswith("[vm-test]")))
                if rc != "0":
                    raise CheckFailed(f"provisioning {name} failed (exit {rc}):\n{_tail(log, 40)}")
                del pending[name]
            elif not machine.running:
                raise CheckFailed(f"{name} stopped while provisioning:\n{machine.serial_tail()}")
        if pending and time.monotonic() > deadline:
            raise CheckFailed(f"{', '.join(pending)} not provisioned after {timeout:.0f}s:\n"
                              + "\n".join(m.serial_tail(15) for m in pending.values()))
        time.sleep(2)


def _check_cluster(args: argparse.Namespace, machines: list[Machine], share: Path) -> int:
    k = Kubectl(args.kubectl, share / "deploy" / ".cluster" / "admin.kubeconfig")
    workers = [m.spec.name for m in machines if m.spec.role == "worker"]
    for machine in machines:
        line = next((x for x in (share / ".vmtest" / f"{machine.spec.name}.log").read_text().splitlines()
                     if "cgroup fs" in x), "")
        if "cgroup2fs" not in line:
            raise CheckFailed(f"{machine.spec.name} does not run cgroup v2: {line!r}")
    say("every VM mounts cgroup2fs at /sys/fs/cgroup")
    with phase("nodes Ready"):
        checks.nodes_ready(k, workers, timeout=1200)
        print(k("get", "nodes", "-o", "wide"), end="", flush=True)
        say('on cp, `kubelite get nodes` (as `vagrant ssh cp -c "kubelite get nodes"`):')
        print(checks.cli_on_control_plane_lists_ready(share, workers, timeout=300), end="", flush=True)
    with phase(f"deployment of {REPLICAS} spreads over the workers"):
        pods = checks.deployment_spreads(k, workers, replicas=REPLICAS, timeout=1200)
        print(k("get", "pods", "-o", "wide", "-l", f"app={checks.WEB}"), end="", flush=True)
    with phase("pod-to-pod HTTP across VMs"):
        say(checks.cross_vm_http(k, pods, workers[0], workers[1], timeout=900))
        say(checks.cross_vm_http(k, pods, workers[1], workers[0], timeout=900))
    with phase("memory limit enforced (cgroup v2): OOMKilled"):
        say(checks.memory_limit_enforced(k, workers[0], timeout=900))
    victim = next(m for m in machines if m.spec.name == workers[-1])
    survivor = workers[0]
    with phase(f"power off {victim.spec.name}: its pods rescheduled on {survivor}"):
        victim.power_off()
        off = time.monotonic()
        say(f"{victim.spec.name} powered off (qemu stopped)")
        checks.node_not_ready(k, victim.spec.name, timeout=600)
        say(f"{victim.spec.name} NotReady after {time.monotonic() - off:.0f}s")
        checks.rescheduled_onto(k, survivor, replicas=REPLICAS, timeout=1200)
        say(f"all {REPLICAS} replicas running on {survivor} after {time.monotonic() - off:.0f}s")
        print(k("get", "nodes", "-o", "wide"), end="", flush=True)
        print(k("get", "pods", "-o", "wide", "-l", f"app={checks.WEB}"), end="", flush=True)
    return 0


def _diagnose(args: argparse.Namespace, machines: list[Machine]) -> None:
    """What helps to understand a failure: the cluster's view, then each VM's console."""
    share = RUN_DIR / "share"
    kubeconfig = share / "deploy" / ".cluster" / "admin.kubeconfig"
    if kubeconfig.exists() and args.kubectl:
        k = Kubectl(args.kubectl, kubeconfig)
        for what in (("get", "nodes", "-o", "wide"), ("get", "pods", "-A", "-o", "wide"), ("get", "events", "-A")):
            try:
                print(f"--- kubectl {' '.join(what)}\n{k(*what)}", file=sys.stderr)
            except (CheckFailed, OSError) as err:
                print(f"--- kubectl {' '.join(what)}: {err}", file=sys.stderr)
    for machine in machines:
        print(f"--- {machine.spec.name} console (last lines; full: {machine.serial_log})\n{machine.serial_tail(25)}",
              file=sys.stderr)
    print(f"--- run directory kept: {RUN_DIR}", file=sys.stderr)


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return str(err)


def _summary(status: int, total: float) -> None:
    print("\nphase timings:")
    for title, elapsed in TIMINGS:
        print(f"  {elapsed:7.1f}s  {title}")
    print(f"  {total:7.1f}s  total")
    print("RESULT:", "PASS" if status == 0 else f"FAIL (exit {status})", flush=True)


# Keep `wait_for` importable from here for ad-hoc use in a debugging session.
__all__ = ["main", "wait_for"]
