"""Partition shapes as grudges: who drops traffic from whom (Jepsen's jepsen.nemesis).

A grudge is a plain dict `{node: sorted list of nodes whose messages it drops}`, so it goes
to JSON as it is and straight into the proxy's `{"type": "grudge", "grudge": ...}` request.
Nodes that drop nothing are left out. Every shape is a pure function of the node names and
a seeded `random.Random`, so a seed gives the same partition again:

    >>> import random
    >>> halves(["n1", "n2", "n3"], random.Random(1))
    {'n1': ['n2', 'n3'], 'n2': ['n1'], 'n3': ['n1']}
    >>> one_way(["n1"], ["n2"])
    {'n2': ['n1']}
    >>> sorted(PARTITION_SHAPES)
    ['bridge', 'halves', 'majorities-ring', 'majority', 'one', 'random-halves']

Directions: `{"n2": ["n1"]}` cuts n1 -> n2 only; n2 -> n1 still flows. The shapes in
`PARTITION_SHAPES` cut both directions, except `majorities-ring` on 3 nodes (see there).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

Grudge = dict[str, list[str]]
PartitionShape = Callable[[Sequence[str], random.Random], Grudge]


def node_sort_key(name: str) -> tuple[str, int, str]:
    """Orders "n2" before "n10" (natural order), so grudges read the way people count."""
    match = re.fullmatch(r"(.*?)(\d+)", name)
    if match is None:
        return (name, -1, name)
    return (match.group(1), int(match.group(2)), name)


def normalize(grudge: Mapping[str, Iterable[str]]) -> Grudge:
    """Sorted keys and lists, no self-grudges, no empty entries: one spelling per grudge."""
    out: Grudge = {}
    for node in sorted(grudge, key=node_sort_key):
        snubbed = sorted(set(grudge[node]) - {node}, key=node_sort_key)
        if snubbed:
            out[node] = snubbed
    return out


def complete_grudge(components: Iterable[Iterable[str]]) -> Grudge:
    """Every node drops traffic from every node outside its own component (both ways)."""
    groups = [set(c) for c in components]
    universe = set().union(*groups) if groups else set()
    return normalize({node: universe - group for group in groups for node in group})


def invert(nodes: Iterable[str], conns: Mapping[str, Iterable[str]]) -> Grudge:
    """Jepsen's invert-grudge: from `{node: nodes it hears}` to `{node: nodes it drops}`."""
    universe = set(nodes)
    return normalize({node: universe - set(conns.get(node, ())) for node in universe})


def one_way(src_nodes: Iterable[str], dst_nodes: Iterable[str]) -> Grudge:
    """Cuts src -> dst only: every dst node drops messages from every src node."""
    srcs = set(src_nodes)
    return normalize({dst: srcs for dst in dst_nodes})


def isolate(nodes: Sequence[str], isolated: Iterable[str]) -> Grudge:
    """Cuts each node of `isolated` off from every other node (the `primaries` target)."""
    targets = set(isolated)
    alone = [n for n in nodes if n in targets]
    rest = [n for n in nodes if n not in targets]
    return complete_grudge([[n] for n in alone] + [rest])


def bisect(nodes: Sequence[str]) -> tuple[list[str], list[str]]:
    """Cuts a sequence in two, smaller half first (Jepsen's bisect)."""
    cut = len(nodes) // 2
    return list(nodes[:cut]), list(nodes[cut:])


def one(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """Isolates one random node from the rest (Jepsen's partition-random-node)."""
    if len(nodes) < 2:
        return {}
    return isolate(nodes, [rng.choice(list(nodes))])


def halves(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """The first half (the smaller one) against the second half, in the given order."""
    return complete_grudge(bisect(nodes))


def random_halves(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """Shuffles the nodes, then cuts them in halves (Jepsen's partition-random-halves)."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    return complete_grudge(bisect(shuffled))


def majority(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """A random majority (n // 2 + 1 nodes) against the rest.

    Jepsen's combined package calls random halves `:majority`; for odd n that is the same
    cut, but for even n its halves leave no side with a majority. Here the larger side is
    always a strict majority, so one side can always make progress (for n = 4 this isolates
    a single node, like `one`).
    """
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    size = len(shuffled) // 2 + 1
    return complete_grudge([shuffled[:size], shuffled[size:]])


def bridge(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """Two halves that meet only at one bridge node, which hears and is heard by all.

    As Jepsen's bridge, on a shuffled order (as its combined package does): the bridge is
    the first node of the second (larger) half; it drops nothing and nobody drops it.
    """
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    first, second = bisect(shuffled)
    if not second:
        return {}
    hub = second[0]
    grudge = complete_grudge([first, second])
    return normalize({n: set(s) - {hub} for n, s in grudge.items() if n != hub})


def majorities_ring(nodes: Sequence[str], rng: random.Random) -> Grudge:
    """Every node sees a majority, and no two nodes see the same majority.

    A node's view is itself plus every node it does not drop. The nodes are shuffled into a
    ring and each node hears the nodes within ring distance k, the smallest k whose window
    (2k + 1 nodes) is a majority. The window is smaller than the ring for n >= 4, so views
    are distinct (a window names its centre), and the cut is symmetric: i hears j exactly
    when j hears i. Jepsen's exact ring instead uses one-sided windows for even majorities
    (one-way cuts), and a random graph for n > 5; the symmetric ring keeps replies flowing
    on every link a request can use, which is what a protocol's round trips need.

    n = 3 has no symmetric answer with distinct majority views (a window of 3 is everyone),
    so it does what Jepsen's exact ring does: a one-way ring in which each node drops only
    its ring successor's messages, so it hears {itself, predecessor}: three distinct
    majorities of 2. With n < 3 nothing can be cut and the grudge is empty.
    """
    ring = list(nodes)
    rng.shuffle(ring)
    count = len(ring)
    if count < 3:
        return {}
    if count == 3:
        return normalize({ring[i]: [ring[(i + 1) % 3]] for i in range(3)})
    quorum = count // 2 + 1
    reach = quorum // 2  # smallest k with 2k + 1 >= quorum
    grudge: dict[str, set[str]] = {}
    for i, node in enumerate(ring):
        heard = {ring[(i + d) % count] for d in range(-reach, reach + 1)}
        grudge[node] = set(ring) - heard
    return normalize(grudge)


def view(nodes: Iterable[str], grudge: Mapping[str, Iterable[str]], node: str) -> set[str]:
    """The nodes whose messages `node` receives under `grudge`, itself included."""
    return set(nodes) - set(grudge.get(node, ())) | {node}


PARTITION_SHAPES: dict[str, PartitionShape] = {
    "one": one,
    "halves": halves,
    "random-halves": random_halves,
    "majority": majority,
    "bridge": bridge,
    "majorities-ring": majorities_ring,
}
