"""Reaching behind the API into a cluster made by `kubelite up` on this machine.

Two demos do what no API call can: kill a container's process as a crash would, and make
a node fail. Both need the machine the node runs on, which `kubelite up` makes easy to
reach: every node's runtime state is a directory under the cluster's state directory
(`<data-dir>/nodes/<node>/`), every simulated host is a network namespace with a cable
(a veth) on the cluster's bridge, and every kubelet is a daemon with a pid file.

Killing a container the way `docker kill` does: the runtime records each container's host
pid in `containers/<id>/state.json` (runtime/container/state.py), next to the process's
start time so a recycled pid is never mistaken for it. A process cannot do this from
inside the container: there the main process is PID 1 of its own PID namespace, and the
kernel drops any signal sent to PID 1 from inside that namespace unless PID 1 installed
a handler for it, which is why `kubelite exec POD -- kill -9 1` does nothing. From the
host, SIGKILL always reaches it.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from cli.local import daemons
from cli.local.fabric import Fabric, Host
from cli.local.up import ClusterState, agent_argv
from runtime.container import state as container_state
from runtime.launcher.init import process_start_time


class NotLocal(Exception):
    """The cluster was not made by `kubelite up` on this machine (or not from that data dir)."""


@dataclass
class LocalCluster:
    """A `kubelite up` cluster's nodes, reached from this machine. The methods block (netlink,
    waiting for a daemon to stop): call them from a thread, e.g. `asyncio.to_thread`; pyroute2's
    synchronous sockets refuse to run inside an event loop."""

    state: ClusterState

    @property
    def state_dir(self) -> Path:
        return Path(self.state.state_dir)

    def node(self, name: str) -> dict[str, str]:
        for node in self.state.nodes:
            if node["name"] == name:
                return node
        raise NotLocal(f"node {name} is not one of the nodes `kubelite up` made in {self.state_dir}")

    # ------------------------------------------------------------ containers

    def kill_container(self, node_name: str, container_id: str) -> int:
        """SIGKILL a container's main process from the host; returns its host pid."""
        cid = container_id.split("://", 1)[-1]
        path = Path(self.node(node_name)["root_dir"]) / "containers" / cid / "state.json"
        st = container_state.load(path)
        if st.init_pid is None or st.init_start is None:
            raise NotLocal(f"container {cid} has no recorded process (state {st.phase})")
        try:
            if process_start_time(st.init_pid) != st.init_start:
                raise ProcessLookupError
        except (OSError, ProcessLookupError) as err:
            raise NotLocal(f"container {cid}'s process {st.init_pid} is no longer running") from err
        os.kill(st.init_pid, signal.SIGKILL)
        return st.init_pid

    # ------------------------------------------------------------ nodes

    def can_fail_nodes(self) -> bool:
        """Simulated hosts (netns on a bridge) can be unplugged; the single-node cluster
        runs on this machine itself, which the demo must not unplug."""
        return all(node.get("netns") for node in self.state.nodes)

    def host(self, name: str) -> Host:
        fabric = Fabric(self.state.prefix)
        for host in fabric.hosts():
            if host.name == name:
                return host
        raise NotLocal(f"no simulated host {name} on {fabric.bridge}")

    def fail_node(self, name: str) -> None:
        """The host dies: its kubelet stops (no more Lease renewals or status updates) and its
        network cable is pulled. Its containers keep running, as on a machine cut off by a
        network failure: the control plane cannot tell the two apart."""
        self.node(name)
        daemons.stop(f"agent-{name}", self.state_dir)
        Fabric(self.state.prefix).cut(self.host(name))

    def restore_node(self, name: str) -> None:
        """Plug the cable back in and start the node's kubelet again."""
        node = self.node(name)
        Fabric(self.state.prefix).reconnect(self.host(name))
        if not daemons.running(f"agent-{name}", self.state_dir):  # it rejoins with the command `up` used
            daemons.start(f"agent-{name}", agent_argv(node=node), self.state_dir)

    def server_flag(self, flag: str) -> str | None:
        """A flag the running `kubelite server` was started with (e.g. its grace periods)."""
        pid = daemons.pid_of("server", self.state_dir)
        if pid is None:
            return None
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        words = [a.decode(errors="replace") for a in argv]
        for i, word in enumerate(words[:-1]):
            if word == flag:
                return words[i + 1]
        return None


def find(data_dir: Path, node_names: list[str]) -> LocalCluster:
    """The `kubelite up` cluster recorded in `data_dir`, if it is running and its nodes are the
    ones the API server lists (so a demo never touches some other cluster's hosts)."""
    state = ClusterState.load(data_dir)
    if state is None:
        raise NotLocal(f"no cluster made by `kubelite up` is recorded in {data_dir} (pass --data-dir)")
    if not daemons.running("server", data_dir):
        raise NotLocal(f"the cluster recorded in {data_dir} is not running")
    if os.geteuid() != 0:
        raise NotLocal("reaching into the nodes of a local cluster needs root (try sudo)")
    recorded = sorted(n["name"] for n in state.nodes)
    if recorded != sorted(node_names):
        raise NotLocal(f"the API server's nodes ({', '.join(sorted(node_names))}) are not the ones "
                       f"`kubelite up` made in {data_dir} ({', '.join(recorded)})")
    return LocalCluster(state)
