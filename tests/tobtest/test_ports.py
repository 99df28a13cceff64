"""Port plans: distinct free ports, and a one-line error for a port in use."""

import socket
from pathlib import Path

import pytest

from tobtest.ports import PortInUse, PortLeases, PortPlan, ports_needed


def test_auto_allocation_gives_distinct_ports():
    plan = PortPlan.allocate(5)
    ports = [*plan.client_ports, *plan.peer_ports, plan.control_port, *plan.links.values()]
    assert len(ports) == ports_needed(5) == len(set(ports))
    assert set(plan.links) == {(s, d) for s in range(5) for d in range(5) if s != d}


def test_base_port_in_use_is_reported_in_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUse) as info:
            PortPlan.allocate(3, base_port=port)
    assert "\n" not in str(info.value)
    assert str(port) in str(info.value)


def test_base_port_out_of_range():
    with pytest.raises(PortInUse, match="leaves no room"):
        PortPlan.allocate(3, base_port=65530)


def test_leases_are_disjoint_and_below_the_ephemeral_range():
    leases = PortLeases()
    count = ports_needed(3)
    bases = [leases.lease(count) for _ in range(5)]
    blocks = [set(range(base, base + count)) for base in bases]
    assert sum(len(b) for b in blocks) == len(set().union(*blocks))  # no port twice
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(base >= 1024 and base + count <= low for base in bases)


def test_a_lease_skips_a_port_in_use_and_a_released_block_is_free_again():
    port = PortLeases().lease(8)  # eight free ports where the OS hands out none by itself
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        # Those eight, the first one busy: room for one block of four, not two.
        leases = PortLeases(first_port=port, last_port=port + 7)
        base = leases.lease(4)
        assert port < base <= port + 4
        with pytest.raises(PortInUse, match="no 4 consecutive free ports"):
            leases.lease(4)
        leases.release(base)
        assert port < leases.lease(4) <= port + 4
