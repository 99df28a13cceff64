"""The dependency graph of an Elle-style check: build it, find its cycles, name them.

    g = DepGraph(3)                   # txn nodes 0, 1, 2
    g.link(0, 1, WW)
    g.link(1, 0, RW)
    cycles, complete = find_cycles(g, deadline=time.monotonic() + 5)
    cycles[0].kind                    # "G-single"
    cycles[0].nodes, cycles[0].rels   # [0, 1], [WW, RW]  (rels[i]: nodes[i] -> nodes[i+1])

Nodes `0..n_txns-1` are transactions. Edges carry one relation each: `WW`, `WR`, `RW`
(data dependencies), `PROCESS` (successive ops of one process) or `REALTIME`.

Real-time order in linear size: instead of Elle's links from each op to the ops that
completed most recently before its invocation (up to one edge per concurrent client per
op), `link_realtime` threads a chain of *barrier* nodes (ids >= `n_txns`) through the
history: a completion links to the current barrier, the next completion after an
invocation opens a new barrier linked from the previous one, and an invocation links from
the current barrier. So `a` reaches `b` through barriers exactly when `a` completed before
`b` was invoked, with at most three edges per op. A second chain holds only the completions
of txns that append, for invocations that must follow writes but not reads. Cycles are
reported over transactions only: a run through barriers is shown as one realtime edge.

Search: Kahn's algorithm peels off every node that cannot be on a cycle (in a valid
history, all of them, in linear time); Tarjan's algorithm (iterative) splits the rest into
strongly connected components. In each component the search goes tier by tier, as Elle's
does, so the most specific anomaly is found first: ww only (G0), ww+wr with a wr edge
(G1c), data edges with exactly one rw (G-single) or any rw (G2-item, G-nonadjacent), then
the same with process edges (`-process`) and with process and realtime edges (`-realtime`).
Each tier restricts the component to its relations, takes the strongly connected parts of
that, and runs a 0-1 breadth-first search (barrier hops cost 0) from the head of a
required edge back to its tail: the result is a shortest cycle through that edge. Tiers that
need exactly one rw edge try a bounded number of edges; everything stops at `deadline`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from tobtest.checker.elle_models import implied_anomalies

WW, WR, RW, PROCESS, REALTIME = 1, 2, 4, 8, 16
DATA = WW | WR | RW
ALL = DATA | PROCESS | REALTIME
REL_NAMES = {WW: "ww", WR: "wr", RW: "rw", PROCESS: "process", REALTIME: "realtime"}
_SHIFT = 5  # an edge is packed as (target << _SHIFT) | relation

# (allowed relations, relation the cycle must use, exact number of rw edges or None)
TIERS: tuple[tuple[int, int, int | None], ...] = tuple(
    tier
    for extra, required in ((0, 0), (PROCESS, PROCESS), (PROCESS | REALTIME, REALTIME))
    for tier in (
        (WW | extra, required or WW, None),
        (WW | WR | extra, required or WR, None),
        (DATA | extra, required or RW, 1),
        (DATA | extra, required or RW, None),
    )
)
EXACT_TIER_STARTS_MAX = 64  # failed BFS starts per component in a tier needing one rw
SEARCH_SUCCESSES_MAX = 8  # cycles found per component and tier, of which the shortest wins
SEARCH_WORK_MAX = 50_000  # ... fewer in big components: about this many nodes visited


@dataclass
class Cycle:
    """A cycle over transaction nodes: rels[i] is the relation nodes[i] -> nodes[i+1 mod n]."""

    nodes: list[int]
    rels: list[int]
    kind: str = ""


class DepGraph:
    """A directed multigraph of txn nodes plus realtime barrier nodes (see module doc)."""

    def __init__(self, n_txns: int) -> None:
        self.n_txns = n_txns
        self.adj: list[list[int]] = [[] for _ in range(n_txns)]
        self.edge_counts: dict[str, int] = {name: 0 for name in REL_NAMES.values()}

    def link(self, a: int, b: int, rel: int) -> None:
        if a != b:  # a txn never depends on itself: internal reads are checked apart
            self.adj[a].append((b << _SHIFT) | rel)
            self.edge_counts[REL_NAMES[rel]] += 1

    def add_barrier(self) -> int:
        self.adj.append([])
        return len(self.adj) - 1

    def out_edges(self, a: int) -> list[tuple[int, int]]:
        """(target, relation) pairs; for tests and explanations, not hot loops."""
        return [(e >> _SHIFT, e & ALL) for e in self.adj[a]]


# Realtime events for link_realtime: (node << 3) | kind.
RT_DONE = 1  # an ok completion (else an invocation)
RT_ALL = 2  # completion: joins the chain of every completion; invocation: hangs off it
RT_WRITES = 4  # completion: joins the chain of completions of txns that append; invocation:
# hangs off that one only (it needs to follow every write that completed before it, but
# not other reads: a final read of a node that may lag behind other nodes)


def link_realtime(graph: DepGraph, events: Iterable[int]) -> None:
    """Adds realtime order from events in history order (see RT_*): a txn reaches a later
    one exactly when it completed, on a chain the later one hangs off, before the later one
    was invoked (see module doc)."""
    adj = graph.adj
    barrier = [-1, -1, -1, -1, -1]  # by chain bit (2, 4)
    used = [False] * 5  # has an invocation hung off the chain's current barrier yet?
    count = 0
    for ev in events:
        node = ev >> 3
        for chain in (RT_ALL, RT_WRITES):
            if not ev & chain:
                continue
            b = barrier[chain]
            if ev & RT_DONE:
                if b < 0 or used[chain]:
                    new = graph.add_barrier()
                    if b >= 0:
                        adj[b].append((new << _SHIFT) | REALTIME)
                        count += 1
                    b = barrier[chain] = new
                    used[chain] = False
                adj[node].append((b << _SHIFT) | REALTIME)
                count += 1
            elif b >= 0:
                adj[b].append((node << _SHIFT) | REALTIME)
                used[chain] = True
                count += 1
    graph.edge_counts["realtime"] += count


def cyclic_core(graph: DepGraph) -> list[int]:
    """Nodes that Kahn's algorithm cannot peel off: all cycles lie among them (sorted)."""
    adj = graph.adj
    n = len(adj)
    indeg = [0] * n
    for edges in adj:
        for e in edges:
            indeg[e >> _SHIFT] += 1
    queue = [v for v in range(n) if not indeg[v]]
    for v in queue:  # the list grows while we walk it
        for e in adj[v]:
            w = e >> _SHIFT
            indeg[w] -= 1
            if not indeg[w]:
                queue.append(w)
    if len(queue) == n:
        return []
    return [v for v in range(n) if indeg[v]]


def strongly_connected(
    graph: DepGraph, nodes: Iterable[int], allowed: int, members: set[int]
) -> list[list[int]]:
    """Tarjan's SCCs (iterative) of the subgraph on `members` with `allowed` relations,
    rooted at `nodes` in order. Only components of two or more nodes are returned."""
    adj = graph.adj
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, 0)]
        while work:
            v, i = work[-1]
            edges = adj[v]
            descended = False
            while i < len(edges):
                e = edges[i]
                i += 1
                if not e & allowed:
                    continue
                w = e >> _SHIFT
                if w not in members:
                    continue
                if w not in index:
                    work[-1] = (v, i)
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, 0))
                    descended = True
                    break
                if w in on_stack and index[w] < low[v]:
                    low[v] = index[w]
            if descended:
                continue
            work.pop()
            if work:
                u = work[-1][0]
                if low[v] < low[u]:
                    low[u] = low[v]
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def classify(rels: list[int]) -> str:
    """Elle's name for a cycle with these relations."""
    n_rw = rels.count(RW)
    if n_rw == 0:
        base = "G1c" if WR in rels else "G0"
    elif n_rw == 1:
        base = "G-single"
    else:
        n = len(rels)
        adjacent = any(rels[i] == RW and rels[(i + 1) % n] == RW for i in range(n))
        base = "G2-item" if adjacent else "G-nonadjacent"
    if REALTIME in rels:
        return base + "-realtime"
    if PROCESS in rels:
        return base + "-process"
    return base


def _bfs_back(
    graph: DepGraph,
    start: int,
    tails: set[int],
    members: set[int],
    allowed: int,
    rw0: int,
    exact_rw: int | None,
    deadline: float,
) -> list[tuple[int, int]] | None:
    """Shortest path start ~> some tail over `allowed` edges inside `members`, as a list of
    (node, relation into node); barrier hops cost 0. With `exact_rw`, the path plus the
    closing edge (counted in `rw0`) must hold exactly that many rw edges (at most 1)."""
    adj = graph.adj
    n_txns = graph.n_txns
    track = exact_rw is not None
    s0 = start * 2 + (rw0 if track else 0)
    dist = {s0: 0}
    parent: dict[int, tuple[int, int]] = {}
    dq = deque([s0])
    steps = 0
    while dq:
        s = dq.popleft()
        v, c = s >> 1, s & 1
        if v in tails and (not track or c == exact_rw):
            path = []
            while s != s0:
                prev, rel = parent[s]
                path.append((s >> 1, rel))
                s = prev
            path.reverse()
            return path
        steps += 1
        if not steps & 4095 and time.monotonic() > deadline:
            return None
        d = dist[s]
        cost = 0 if v >= n_txns else 1
        for e in adj[v]:
            rel = e & ALL
            if not rel & allowed:
                continue
            w = e >> _SHIFT
            if w not in members:
                continue
            nc = c + 1 if (track and rel == RW) else c
            if nc > 1:
                continue
            ns = w * 2 + nc
            nd = d + cost
            if nd < dist.get(ns, nd + 1):
                dist[ns] = nd
                parent[ns] = (s, rel)
                if cost:
                    dq.append(ns)
                else:
                    dq.appendleft(ns)
    return None


def _search_component(
    graph: DepGraph, comp: list[int], tier: tuple[int, int, int | None], deadline: float
) -> Cycle | None:
    allowed, required, exact_rw = tier
    members = set(comp)
    adj = graph.adj
    heads: dict[int, set[int]] = {}  # head of a required edge -> its tails
    for a in comp:
        if a >= graph.n_txns:
            continue
        for e in adj[a]:
            if e & required:
                b = e >> _SHIFT
                if b in members:
                    heads.setdefault(b, set()).add(a)
    # Txns are numbered in invocation order, so a required edge between txns close in time
    # is the likeliest to close a short cycle: try those first.
    n_txns = graph.n_txns
    starts = sorted(
        heads, key=lambda b: (min(abs(b - a) for a in heads[b]) if b < n_txns else 0, b)
    )
    rw0 = 1 if required == RW else 0
    # Each success is a shortest cycle through one required edge; a few of them give a
    # short cycle overall, and a giant component gets one BFS, not several.
    successes_max = max(1, min(SEARCH_SUCCESSES_MAX, SEARCH_WORK_MAX // len(comp)))
    failures = 0
    best: Cycle | None = None
    for b in starts:
        if time.monotonic() > deadline:
            break
        path = _bfs_back(graph, b, heads[b], members, allowed, rw0, exact_rw, deadline)
        if path is None:
            failures += 1
            # Without an rw limit a path always exists inside one component.
            if exact_rw is None or failures >= EXACT_TIER_STARTS_MAX:
                break
            continue
        cycle = _to_cycle(graph, path[-1][0], required, b, path)
        if best is None or len(cycle.nodes) < len(best.nodes):
            best = cycle
        successes_max -= 1
        if successes_max == 0 or len(best.nodes) == 2:
            break
    return best


def _to_cycle(
    graph: DepGraph, tail: int, required: int, head: int, path: list[tuple[int, int]]
) -> Cycle:
    """tail -required-> head, then `path` (head ~> tail), collapsed to txn nodes."""
    n_txns = graph.n_txns
    hops = [(head, required), *path]
    nodes = [tail]
    rels: list[int] = []
    through_barrier = False
    for node, rel in hops:
        if node >= n_txns:
            through_barrier = True
            continue
        rels.append(REALTIME if through_barrier else rel)
        through_barrier = False
        nodes.append(node)
    return Cycle(nodes=nodes[:-1], rels=rels)


def _relations_inside(graph: DepGraph, comp: list[int], members: set[int]) -> int:
    mask = 0
    for a in comp:
        for e in graph.adj[a]:
            if (e >> _SHIFT) in members:
                mask |= e & ALL
    return mask


def find_cycles(
    graph: DepGraph, deadline: float, max_per_kind: int | None = None
) -> tuple[list[Cycle], bool]:
    """Cycles found (at most `max_per_kind` of each kind, if given) and whether the search
    finished before `deadline` (time.monotonic()). A cycle is left out when one over the
    same txns was already found whose kind implies its kind (G-single-process implies
    G-single-realtime)."""
    core = cyclic_core(graph)
    if not core:
        return [], True
    members = set(core)
    components = strongly_connected(graph, core, ALL, members)
    found: list[Cycle] = []
    kinds_by_nodes: dict[frozenset[int], set[str]] = {}
    per_kind: dict[str, int] = {}
    for comp in components:
        comp_members = set(comp)
        inside = _relations_inside(graph, comp, comp_members)
        for tier in TIERS:
            if time.monotonic() > deadline:
                return found, False
            if not inside & tier[1]:
                continue
            for sub in strongly_connected(graph, comp, tier[0], comp_members):
                cycle = _search_component(graph, sub, tier, deadline)
                if cycle is None:
                    continue
                cycle.kind = classify(cycle.rels)
                node_set = frozenset(cycle.nodes)
                earlier = kinds_by_nodes.setdefault(node_set, set())
                if cycle.kind in implied_anomalies(earlier):
                    continue
                if max_per_kind is not None and per_kind.get(cycle.kind, 0) >= max_per_kind:
                    continue
                earlier.add(cycle.kind)
                per_kind[cycle.kind] = per_kind.get(cycle.kind, 0) + 1
                found.append(cycle)
    return found, time.monotonic() <= deadline
