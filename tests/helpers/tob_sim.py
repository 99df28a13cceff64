"""A simulated correct TOB, recording the history a real run would: for property tests.

    ops = simulate_tob(random.Random(7), steps=200)
    check(ops)["valid"]   # always True: the simulation is a correct TOB

There is one global order; each node's delivered prefix of it only grows; a broadcast is
sequenced some time after its invocation and acked once it is delivered at its own node
(with its position); `fail` only ever comes for a broadcast never sequenced, `info` for one
that may still be sequenced later. `local` reads return the node's current prefix; `log`
and `lease` reads complete only while their node has delivered the whole order, so they
return everything acked so far. Client calls overlap (several processes), nemesis ops are
sprinkled in, and the run ends with every node caught up and one final read per node.
"""

from __future__ import annotations

import random
from typing import Any

from tests.helpers.history_builder import HistoryBuilder
from tobtest.histories.op import Op

READ_MODES = ("local", "log", "lease")


class _Sim:
    def __init__(self, rng: random.Random, nodes: tuple[str, ...], processes: int) -> None:
        self.rng, self.nodes = rng, nodes
        self.h = HistoryBuilder()
        self.order: list[int] = []
        self.position: dict[int, int] = {}  # value -> its place in the order
        self.delivered = dict.fromkeys(nodes, 0)
        self.pending: list[int] = []  # invoked, not yet sequenced, may still be
        self.slots: list[int] = list(range(processes))  # process id per client slot
        self.next_process = processes
        self.in_flight: dict[int, tuple[int, str, str, Any]] = {}  # slot -> handle, f, node, x
        self.next_value = 0

    def invoke(self, read_weight: float) -> None:
        idle = [s for s in range(len(self.slots)) if s not in self.in_flight]
        if not idle:
            return
        slot, node = self.rng.choice(idle), self.rng.choice(self.nodes)
        if self.rng.random() < read_weight:
            mode = self.rng.choice(READ_MODES)
            handle = self.h.invoke(self.slots[slot], "read", None, node=node, read_mode=mode)
            self.in_flight[slot] = (handle, "read", node, mode)
        else:
            value, self.next_value = self.next_value, self.next_value + 1
            handle = self.h.invoke(self.slots[slot], "broadcast", value, node=node)
            self.pending.append(value)
            self.in_flight[slot] = (handle, "broadcast", node, value)

    def sequence(self) -> None:
        if self.pending:
            i = self.rng.randrange(len(self.pending))
            self.pending[i], self.pending[-1] = self.pending[-1], self.pending[i]
            self._append(self.pending.pop())

    def _append(self, value: int) -> None:
        self.position[value] = len(self.order)
        self.order.append(value)

    def deliver(self) -> None:
        node = self.rng.choice(self.nodes)
        self.delivered[node] = min(len(self.order), self.delivered[node] + self.rng.randint(1, 3))

    def complete(self, slot: int, finishing: bool = False) -> None:
        handle, f, node, x = self.in_flight[slot]
        d = self.delivered[node]
        if f == "read":
            if x == "local" or d == len(self.order):
                self.h.ok(handle, self.order[:d])
            elif finishing or self.rng.random() < 0.2:
                self._give_up(slot, handle)
                return
            else:
                return  # a linearizable read waits for its node to catch up
        elif self.position.get(x, d) < d:
            self.h.ok(handle, position=self.position[x])
        elif x in self.pending and self.rng.random() < 0.3:
            self.pending.remove(x)
            self.h.fail(handle)
        elif finishing or self.rng.random() < 0.1:
            self._give_up(slot, handle)
            return
        else:
            return
        del self.in_flight[slot]

    def _give_up(self, slot: int, handle: int) -> None:
        """A timeout: the process is done for; the slot continues as a new process."""
        self.h.info(handle)
        del self.in_flight[slot]
        self.slots[slot], self.next_process = self.next_process, self.next_process + 1

    def finish(self) -> None:
        for slot in list(self.in_flight):
            self.complete(slot, finishing=True)
        for value in self.pending:  # info broadcasts: some land late, some never
            if self.rng.random() < 0.5:
                self._append(value)
        for i, node in enumerate(self.nodes):
            mode = self.rng.choice(READ_MODES)
            process = self.next_process + i
            handle = self.h.invoke(process, "read", None, node=node, read_mode=mode, final=True)
            self.h.ok(handle, list(self.order))


def simulate_tob(
    rng: random.Random,
    steps: int,
    nodes: tuple[str, ...] = ("n1", "n2", "n3"),
    processes: int = 5,
    read_weight: float = 0.3,
) -> list[Op]:
    """Runs `steps` random steps of a correct TOB and returns its history."""
    sim = _Sim(rng, nodes, processes)
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.35:
            sim.invoke(read_weight)
        elif roll < 0.55:
            sim.sequence()
        elif roll < 0.75:
            sim.deliver()
        elif roll < 0.98:
            if sim.in_flight:
                sim.complete(rng.choice(list(sim.in_flight)))
        else:
            sim.h.nemesis(rng.choice(["start-partition", "stop-partition", "kill", "start"]))
    sim.finish()
    return sim.h.ops
