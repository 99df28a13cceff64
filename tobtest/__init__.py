"""tobtest: Jepsen-style fault-injection testing of Total Order Broadcast on real processes.

Run `tobtest run` for a short default test (3 per-slot Paxos nodes, partition nemesis) and
`tobtest --help` for everything else. The subpackages are the top-level folders of the
repository: `tobtest.node` (the system under test), `tobtest.nemesis` (faults and the proxy
layer), `tobtest.workloads`, `tobtest.histories` and `tobtest.checker`.
"""

__version__ = "0.1.0"
