"""Applies desired fragments to ``table ip kubelite-svc`` with one ``nft -f -`` transaction each time.

    update({key: fragment | None})   diff against what was last applied, for those keys only:
        1. add new sets                      4. map elements: delete removed/changed, add new/changed
        2. add new chains (empty)            5. flush, then delete, chains no longer wanted
        3. flush + refill new/changed chains 6. delete sets no longer wanted
       then flush the UDP conntrack entries of backends that went away.
    resync(all fragments)            the whole table rebuilt atomically (start, every few minutes,
                                     and whenever an incremental transaction fails: drift)
    teardown()                       the table, our route and the conntrack entries of our translations, gone

The order makes every step's references valid inside the transaction: a rule or element only
names chains and sets that exist by then, and a chain is deleted only after the elements and
rules that jumped to it. nft applies the script atomically, so packets see the old table or the
new one, never a mix. Only our table is ever named; it runs in the node's network namespace
(``nsenter --net=...``, as runtime/network/nft.py) when the node is one.

State: ``applied`` is what the kernel holds as far as we know; it changes only after nft
succeeded. The calls block (subprocesses): run them in a thread, one at a time.
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from collections.abc import Mapping

from proxy.rules import TABLE, Context, Flow, Fragment, full_text, teardown_text

log = logging.getLogger(__name__)

RTPROT_PROXY = "76"  # routing protocol number of our one route (the pod network's are 75)


class ApplyError(RuntimeError):
    pass


def plan(old: Mapping[str, Fragment | None], new: Mapping[str, Fragment | None]) -> str:
    """The nft script taking the fragments ``old`` to ``new`` (same keys considered: those in either)."""
    keys = sorted(set(old) | set(new))
    before = [old.get(k) or Fragment() for k in keys]
    after = [new.get(k) or Fragment() for k in keys]
    t = f"ip {TABLE}"
    out: list[str] = []
    for o, n in zip(before, after, strict=True):
        out += [f"add set {t} {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {sec}s; }}\n"
                for name, sec in n.sets.items() if name not in o.sets]
    for o, n in zip(before, after, strict=True):
        out += [f"add chain {t} {name}\n" for name in n.chains if name not in o.chains]
    for o, n in zip(before, after, strict=True):
        for name, rules in n.chains.items():
            if o.chains.get(name) == rules:
                continue
            if name in o.chains:
                out.append(f"flush chain {t} {name}\n")
            out += [f"add rule {t} {name} {rule}\n" for rule in rules]
    for o, n in zip(before, after, strict=True):
        for (m, key), verdict in o.elements.items():
            if n.elements.get((m, key)) != verdict:
                out.append(f"delete element {t} {m} {{ {key} }}\n")
    for o, n in zip(before, after, strict=True):
        for (m, key), verdict in n.elements.items():
            if o.elements.get((m, key)) != verdict:
                out.append(f"add element {t} {m} {{ {key} : {verdict} }}\n")
    gone = [name for o, n in zip(before, after, strict=True) for name in o.chains if name not in n.chains]
    out += [f"flush chain {t} {name}\n" for name in gone]
    out += [f"delete chain {t} {name}\n" for name in gone]
    for o, n in zip(before, after, strict=True):
        out += [f"delete set {t} {name}\n" for name in o.sets if name not in n.sets]
    return "".join(out)


def stale_udp_flows(old: Mapping[str, Fragment | None], new: Mapping[str, Fragment | None]) -> set[Flow]:
    """UDP conntrack entries to flush: backends no longer reached through that address and port
    (UDP has no end of connection, so an entry would keep sending to a gone pod)."""
    was = {f for frag in old.values() if frag for f in frag.flows if f.protocol == "udp"}
    now = {f for frag in new.values() if frag for f in frag.flows if f.protocol == "udp"}
    return was - now


def conntrack_argv(flow: Flow) -> list[str]:
    argv = ["conntrack", "-D", "-p", flow.protocol]
    if flow.orig_dst is not None:
        argv += ["--orig-dst", flow.orig_dst]
    return [*argv, "--orig-port-dst", str(flow.orig_port), "--dst-nat", flow.ep_ip]


class Applier:
    """The table's writer: ``applied`` mirrors the kernel after every successful call."""

    def __init__(self, ctx: Context, *, netns_path: str | None = None) -> None:
        self.ctx = ctx
        self.prefix = ["nsenter", f"--net={netns_path}"] if netns_path else []
        self.applied: dict[str, Fragment] = {}

    def _run(self, argv: list[str], script: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix, *argv], input=script, capture_output=True, text=True, check=False)

    def _nft(self, script: str) -> None:
        if not script:
            return
        result = self._run(["nft", "-f", "-"], script)
        if result.returncode != 0:
            raise ApplyError(f"nft: {result.stderr.strip() or result.returncode}")

    def ensure_route(self) -> None:
        """A node with no route for the ClusterIPs (a simulated host has no default route) could
        not even send to them: locally generated packets are routed before the nat hook can
        DNAT them. Give it one, on loopback, marked as ours; never replace an existing route."""
        probe = str(ipaddress.ip_network(self.ctx.service_cidr)[1])
        if self._run(["ip", "route", "get", probe]).returncode != 0:
            self._run(["ip", "route", "add", self.ctx.service_cidr, "dev", "lo", "proto", RTPROT_PROXY])
        # NodePorts on 127.0.0.1 DNAT to other nodes' pods: loopback-sourced packets must be
        # routable out of any interface (kube-proxy sets the same; our table drops 127/8 arriving
        # from the network, so this opens nothing to the outside). Only in a node's own namespace
        # (a simulated host, which takes the setting with it): a machine's own setting is not ours
        # to change and could not be restored after the table is gone. There, 127.0.0.1:NODEPORT
        # reaches this node's pods (the bridge has route_localnet), not other nodes'.
        if self.prefix:
            self._run(["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"])

    def resync(self, fragments: Mapping[str, Fragment | None]) -> None:
        """Rebuild the whole table from ``fragments`` (every Service) in one transaction."""
        wanted = {k: f for k, f in fragments.items() if f is not None}
        self.ensure_route()
        self._nft(full_text(self.ctx, wanted.values()))
        self._flush(stale_udp_flows(self.applied, wanted))
        self.applied = wanted

    def update(self, changes: Mapping[str, Fragment | None]) -> bool:
        """Apply the changed Services' fragments incrementally; a failed transaction (the table
        drifted from ``applied``) falls back to a full resync. True when it was incremental."""
        old = {k: self.applied.get(k) for k in changes}
        script = plan(old, changes)
        try:
            self._nft(script)
        except ApplyError as err:
            log.warning("proxy: incremental update failed, rebuilding the table: %s", err)
            everything: dict[str, Fragment | None] = {**self.applied, **changes}
            self.resync(everything)
            return False
        for key, frag in changes.items():
            if frag is None:
                self.applied.pop(key, None)
            else:
                self.applied[key] = frag
        self._flush(stale_udp_flows(old, changes))
        return True

    def _flush(self, flows: set[Flow]) -> None:
        for flow in sorted(flows, key=lambda f: (f.orig_dst or "", f.orig_port, f.ep_ip)):
            self._run(conntrack_argv(flow))  # exit 1 means none matched: fine

    def teardown(self) -> None:
        """Remove the table and the conntrack entries it created; idempotent."""
        self._nft(teardown_text())
        # ClusterIP flows in two calls, by the service CIDR (also what an earlier process left);
        # NodePort flows one by one, as far as we know them.
        net = ipaddress.ip_network(self.ctx.service_cidr)
        for proto in ("tcp", "udp"):
            self._run(["conntrack", "-D", "-p", proto, "--orig-dst", str(net.network_address),
                       "--mask-dst", str(net.netmask)])
        self._flush({f for frag in self.applied.values() for f in frag.flows if f.orig_dst is None})
        self._run(["ip", "route", "del", self.ctx.service_cidr, "dev", "lo", "proto", RTPROT_PROXY])
        self.applied = {}

    def present(self) -> bool:
        return self._run(["nft", "list", "table", "ip", TABLE]).returncode == 0
