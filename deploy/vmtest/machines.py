"""The VMs and the network they live on, all inside one network namespace this module creates.

    netns kltest-vm:  kltest-br0 198.51.100.1/24 (the host side: kubectl runs here)
                        |-- kltest-tap0 -- cp        198.51.100.10
                        |-- kltest-tap1 -- worker-1  198.51.100.11
                        `-- kltest-tap2 -- worker-2  198.51.100.12

Nothing changes in the machine's own network namespace: the taps and the bridge are created
inside `kltest-vm`, and qemu is started there (`ip netns exec`), so the VMs reach only each
other and the bridge address. Deleting the namespace removes the bridge and the taps.

Each VM boots Debian's kernel directly (-kernel/-initrd) on a qcow2 overlay of the shared base
image, with software emulation (-accel tcg: this machine's /dev/kvm cannot run a stock kernel),
its serial console in a file; powering it off is stopping qemu, like pulling the plug.
"""

from __future__ import annotations

import fcntl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from vmtest.image import BaseImage, run

NETNS = "kltest-vm"
BRIDGE = "kltest-br0"
HOST_CIDR = "198.51.100.1/24"
PREFIX_LEN = 24
# The test suite's machine-wide lock: a session counts kltest resources that appear while it
# runs as its own leaks, so the namespace is only ever created while holding the lock.
TEST_LOCK = Path("/run/lock/kltest.lock") if Path("/run/lock").is_dir() else Path("/tmp/kltest.lock")


@dataclass(frozen=True)
class Spec:
    name: str
    role: str  # "cp" or "worker", as in the Vagrantfile
    ip: str
    memory_mb: int
    index: int

    @property
    def tap(self) -> str:
        return f"kltest-tap{self.index}"

    @property
    def mac(self) -> str:
        return f"52:54:00:6b:6c:{self.index:02x}"


def cluster_specs(workers: int) -> list[Spec]:
    specs = [Spec("cp", "cp", "198.51.100.10", 1536, 0)]
    specs += [Spec(f"worker-{i}", "worker", f"198.51.100.{10 + i}", 1280, i) for i in range(1, workers + 1)]
    return specs


def in_netns(cmd: list[str]) -> list[str]:
    return ["ip", "netns", "exec", NETNS, *cmd]


class Network:
    """The namespace, its bridge and one tap per VM."""

    def __init__(self, specs: list[Spec]) -> None:
        self.specs = specs
        self.created = False

    def create(self) -> None:
        if Path("/run/netns", NETNS).exists():
            raise RuntimeError(f"network namespace {NETNS} exists: another vm-test is running, or one was "
                               f"killed without cleaning up (`ip netns del {NETNS}` if none is running)")
        with open(TEST_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            run(["ip", "netns", "add", NETNS])
            self.created = True
        run(in_netns(["ip", "link", "set", "lo", "up"]))
        run(in_netns(["ip", "link", "add", BRIDGE, "type", "bridge"]))
        run(in_netns(["ip", "addr", "add", HOST_CIDR, "dev", BRIDGE]))
        run(in_netns(["ip", "link", "set", BRIDGE, "up"]))
        for spec in self.specs:
            run(in_netns(["ip", "tuntap", "add", "dev", spec.tap, "mode", "tap"]))
            run(in_netns(["ip", "link", "set", spec.tap, "master", BRIDGE, "up"]))

    def destroy(self) -> None:
        if self.created:
            subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)
            self.created = False


class Machine:
    """One qemu process: start, power off."""

    def __init__(self, spec: Spec, *, image: BaseImage, share: Path, run_dir: Path) -> None:
        self.spec = spec
        self.image = image
        self.share = share
        self.overlay = run_dir / f"{spec.name}.qcow2"
        self.serial_log = run_dir / f"{spec.name}.serial.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> None:
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(self.image.disk), str(self.overlay)])
        spec = self.spec
        cmdline = " ".join([
            "root=/dev/vda", "rw", "console=ttyS0", "panic=-1", "net.ifnames=0",
            "systemd.unified_cgroup_hierarchy=1",  # Debian 12's default, stated: the test is about v2
            f"systemd.hostname={spec.name}", f"kubelite.role={spec.role}", f"kubelite.name={spec.name}",
            f"kubelite.ip={spec.ip}/{PREFIX_LEN}",
        ])
        cmd = [
            "qemu-system-x86_64", "-name", spec.name, "-accel", "tcg", "-cpu", "max", "-smp", "1",
            "-m", str(spec.memory_mb), "-nodefaults", "-display", "none", "-no-reboot",
            "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd), "-append", cmdline,
            "-drive", f"file={self.overlay},if=virtio,format=qcow2,cache=unsafe",
            "-netdev", f"tap,id=net0,ifname={spec.tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=net0,mac={spec.mac}",
            "-virtfs", f"local,path={self.share},mount_tag=vagrant,security_model=passthrough,id=vagrant",
            "-device", "virtio-rng-pci",
            "-serial", f"file:{self.serial_log}",
        ]
        self.process = subprocess.Popen(in_netns(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=open(self.serial_log.with_suffix(".qemu.log"), "wb"))
        self.started = time.monotonic()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def power_off(self, timeout: float = 30) -> None:
        """Pull the plug: on SIGTERM qemu stops the VM at once, the guest gets no chance to shut
        down (what a power cut or a dead host looks like to the rest of the cluster)."""
        if self.process is None or not self.running:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def serial_tail(self, lines: int = 30) -> str:
        try:
            text = self.serial_log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
