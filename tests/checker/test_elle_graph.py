"""Tests for the dependency graph: realtime barriers, Kahn + Tarjan, tiered cycle search."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from tobtest.checker.elle_graph import (
    PROCESS,
    REALTIME,
    RT_ALL,
    RT_DONE,
    RT_WRITES,
    RW,
    WR,
    WW,
    DepGraph,
    classify,
    cyclic_core,
    find_cycles,
    link_realtime,
    strongly_connected,
)


def _far() -> float:
    return time.monotonic() + 60


def _reach(graph: DepGraph, a: int) -> set[int]:
    seen, todo = {a}, [a]
    while todo:
        for w, _ in graph.out_edges(todo.pop()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_classify_names() -> None:
    assert classify([WW, WW]) == "G0"
    assert classify([WW, WR]) == "G1c"
    assert classify([WR, RW]) == "G-single"
    assert classify([RW, RW]) == "G2-item"
    assert classify([RW, WR, RW, WR]) == "G-nonadjacent"
    assert classify([RW, REALTIME]) == "G-single-realtime"
    assert classify([WW, PROCESS]) == "G0-process"
    assert classify([RW, RW, PROCESS, REALTIME]) == "G2-item-realtime"


def test_tarjan_finds_components_and_survives_deep_graphs() -> None:
    g = DepGraph(6)
    for a, b in [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 3), (4, 5)]:
        g.link(a, b, WW)
    comps = strongly_connected(g, range(6), WW, set(range(6)))
    assert sorted(comps) == [[0, 1, 2], [3, 4]]
    assert strongly_connected(g, range(6), WR, set(range(6))) == []
    n = 100_000  # a recursive Tarjan would blow the stack here
    ring = DepGraph(n)
    for i in range(n):
        ring.link(i, (i + 1) % n, WW)
    assert [len(c) for c in strongly_connected(ring, range(n), WW, set(range(n)))] == [n]


def test_kahn_core_is_empty_for_a_dag_and_holds_the_cycle() -> None:
    g = DepGraph(4)
    g.link(0, 1, WW)
    g.link(1, 2, WR)
    g.link(0, 2, RW)
    assert cyclic_core(g) == []
    g.link(2, 1, RW)
    g.link(2, 3, WW)
    assert set(cyclic_core(g)) >= {1, 2}
    assert 0 not in cyclic_core(g)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 30), st.integers(1, 10), st.booleans(), st.sampled_from([0, 2, 4])
        ),
        max_size=12,
    )
)
def test_realtime_barriers_encode_exactly_real_time_order(spans: list) -> None:
    """a reaches b exactly by chains of: a completed ok, on a chain b hangs off (every
    completion is on RT_ALL; odd-numbered txns "append" and are also on RT_WRITES), before
    b was invoked."""
    events: list[tuple[int, int, int]] = []  # (time, ends before invokes, event)
    for node, (start, length, ok, hang) in enumerate(spans):
        if hang:
            events.append((start, 1, (node << 3) | hang))
        if ok:
            joins = RT_DONE | RT_ALL | (RT_WRITES if node % 2 else 0)
            events.append((start + length, 0, (node << 3) | joins))
    g = DepGraph(len(spans))
    link_realtime(g, [e for _, _, e in sorted(events)])
    n = len(spans)
    direct = {
        (a, b)
        for a, (a_start, a_len, a_ok, _) in enumerate(spans)
        for b, (b_start, _, _, b_hang) in enumerate(spans)
        if a != b
        and a_ok
        and a_start + a_len <= b_start
        and (b_hang == RT_ALL or (b_hang == RT_WRITES and a % 2))
    }
    closure = set(direct)
    for k in range(n):  # Floyd-Warshall on a dozen nodes
        closure |= {(a, b) for a, kk in closure if kk == k for kk2, b in closure if kk2 == k}
    for a in range(n):
        reach = _reach(g, a) - {a}
        assert {b for b in reach if b < n} == {b for x, b in closure if x == a and b != a}
    assert len(g.adj) - g.n_txns <= 2 * n  # at most a barrier per completion and chain


def test_g0_cycle_and_its_relations() -> None:
    g = DepGraph(3)
    g.link(0, 1, WW)
    g.link(1, 0, WW)
    g.link(1, 2, WR)
    cycles, complete = find_cycles(g, _far())
    assert complete and [(c.kind, sorted(c.nodes)) for c in cycles] == [("G0", [0, 1])]
    assert cycles[0].rels == [WW, WW]


def test_g_single_is_preferred_to_a_shorter_g2_cycle() -> None:
    # 0 -rw-> 1 -rw-> 0 is short (G2-item); 0 -rw-> 1 -wr-> 2 -wr-> 0 has one rw edge.
    g = DepGraph(3)
    g.link(0, 1, RW)
    g.link(1, 0, RW)
    g.link(1, 2, WR)
    g.link(2, 0, WR)
    kinds = sorted(c.kind for c in find_cycles(g, _far())[0])
    assert kinds == ["G-single", "G2-item"]


def test_realtime_cycle_is_collapsed_over_barriers() -> None:
    g = DepGraph(3)
    # txn 0 completes; txn 2 completes; then txn 1 is invoked; 1 -rw-> 0.
    done = RT_DONE | RT_ALL
    link_realtime(
        g, [0 << 3 | RT_ALL, 2 << 3 | RT_ALL, 0 << 3 | done, 2 << 3 | done, 1 << 3 | RT_ALL]
    )
    g.link(1, 0, RW)
    cycles, _ = find_cycles(g, _far())
    assert [c.kind for c in cycles] == ["G-single-realtime"]
    assert sorted(zip(cycles[0].nodes, cycles[0].rels, strict=True)) == [(0, REALTIME), (1, RW)]


def test_process_cycle_hides_the_implied_realtime_one() -> None:
    g = DepGraph(2)
    link_realtime(g, [0 << 3 | RT_ALL, 0 << 3 | RT_DONE | RT_ALL, 1 << 3 | RT_ALL])
    g.link(0, 1, PROCESS)
    g.link(1, 0, RW)
    assert [c.kind for c in find_cycles(g, _far())[0]] == ["G-single-process"]


def test_deadline_in_the_past_stops_the_search() -> None:
    g = DepGraph(2)
    g.link(0, 1, WW)
    g.link(1, 0, WW)
    cycles, complete = find_cycles(g, time.monotonic() - 1)
    assert cycles == [] and complete is False


def test_max_per_kind() -> None:
    g = DepGraph(10)
    for a in range(0, 10, 2):
        g.link(a, a + 1, WW)
        g.link(a + 1, a, WW)
    cycles, _ = find_cycles(g, _far(), max_per_kind=3)
    assert len(cycles) == 3
