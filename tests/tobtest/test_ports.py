"""Port plans: distinct free ports, and a one-line error for a port in use."""

import socket

import pytest

from tobtest.ports import PortInUse, PortPlan, ports_needed


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
