"""Pod CIDR allocator: never hands out one subnet twice, rebuilds from existing nodes."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.ipam_core import CidrAllocator, CidrExhausted


def test_allocates_distinct_24s_and_exhausts() -> None:
    a = CidrAllocator("10.244.0.0/22")
    got = [a.allocate() for _ in range(4)]
    assert got == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]
    with pytest.raises(CidrExhausted):
        a.allocate()
    a.release("10.244.2.0/24")
    assert a.allocate() == "10.244.2.0/24"


def test_occupy_rebuilds_state_and_rejects_foreign_cidrs() -> None:
    a = CidrAllocator("10.244.0.0/16")
    a.occupy("10.244.0.0/24")
    a.occupy("10.244.1.0/24")
    assert a.allocate() == "10.244.2.0/24"
    with pytest.raises(ValueError):
        a.occupy("10.9.0.0/24")
    a.release("10.9.0.0/24")  # not ours: ignored


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=80))
def test_never_hands_out_a_cidr_twice(ops: list[tuple[bool, int]]) -> None:
    a = CidrAllocator("10.244.0.0/19")
    held: list[str] = []
    for alloc, pick in ops:
        if alloc or not held:
            try:
                cidr = a.allocate()
            except CidrExhausted:
                assert len(held) == 32
                continue
            assert cidr not in held
            net = ipaddress.ip_network(cidr)
            assert net.prefixlen == 24 and net.subnet_of(ipaddress.ip_network("10.244.0.0/19"))
            held.append(cidr)
        else:
            a.release(held.pop(pick % len(held)))
        assert a.used == len(held)
