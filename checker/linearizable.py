"""Linearizability checker: Wing & Gong's search with Lowe's memoisation, as Porcupine does.

    from tobtest.checker.linearizable import check
    result = check(history, model="cas-register", time_limit_s=10.0)
    result["valid"]      # True, False or "unknown" (timed out, or the history does not fit)

The history's client ops are paired (invocation, completion) per process and laid out as a
doubly linked list of call and return entries in history order (Jepsen's real-time order).
The search walks it depth-first: it linearises the first call the model accepts, removes it
and its return from the list, and starts over; reaching a return entry means that call's
window closed before it could be linearised, so it backtracks. Every (set of linearised
calls, model state) pair is tried once (Lowe's cache), which is what makes it fast.

Jepsen's semantics: an `ok` op happened between its invocation and completion; an `info`
op, or an invocation that never completes, may have happened at any point after its
invocation, or never (it has no return entry, and the search succeeds once every completed
call is linearised); a `fail` op, by `fail_means`:
- "did-not-happen" (Jepsen, Knossos): it is dropped with its invocation;
- "returned-false" (Porcupine's etcd logs): it ran and returned false (a failed cas saw a
  value other than `from`); a failure with value or error `timed-out` has an unknown result.

Options: `model` (a name in `models.MODELS`, or a `Model`), `time_limit_s` (10 s) and
`max_configurations` (5,000,000 memoised configurations, about 150 bytes each: the memory
bound), either of which, reached, gives `unknown` with the reason in `error`, `fail_means`,
`nil_read` ("no-value" or "unknown"), `initial` (the model's starting value). Models that
partition (kv, per key) are checked one sub-history at a time (P-compositionality). Other
keyword options are ignored, since `compose.check_all` passes the same options to every
checker. An invalid result names the longest linearisable prefix found (`linearized`, op
indices in order), the op that cannot be linearised (`failed_op`) and the anomaly.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from tobtest.checker.models import BAD, FAILED, UNKNOWN, Model, model_by_name
from tobtest.histories.edn import freeze
from tobtest.histories.op import Op

FAIL_MEANINGS = ("did-not-happen", "returned-false")
TIMEOUT_MARKERS = frozenset({"timed-out", "timeout"})
_DEFAULT: Any = object()
MAX_CONFIGURATIONS = 5_000_000  # memo entries, about 150 bytes each: under 1 GB
_SLICE_STEPS = 2048  # search steps between turns (and clock checks): about 5 ms


@dataclass
class Call:
    """One operation: its invocation, its completion (None if none), and what the model sees."""

    invoke: Op
    completion: Op | None
    position: int  # of the invocation in the history
    return_position: int | None  # of the completion; None: may take effect any time after
    f: str
    input: Any
    output: Any
    happened: bool = True  # False: it failed, and failing means it did not happen

    @property
    def has_return(self) -> bool:
        return self.return_position is not None

    @property
    def op_index(self) -> int:
        """The op that stands for the call: its completion, or the invocation if none."""
        return (self.completion or self.invoke).index

    def describe(self) -> str:
        p = self.invoke.process
        what = f"{self.f} {self.input!r}" if self.input is not None else self.f
        if self.output is UNKNOWN:
            result = " (result unknown)"
        elif self.output is FAILED:
            result = " -> failed"
        elif self.output != self.input and self.output is not None:
            result = f" -> {self.output!r}"
        else:
            result = ""
        where = f"op {self.op_index}" + (
            f", invoked at op {self.invoke.index}" if self.completion is not None else ""
        )
        return f"process {p}'s {what}{result} ({where})"


@dataclass
class _Outcome:
    valid: bool | str
    linearized: list[int]  # call ids, in order
    blocking: int | None  # call id that could not be linearised
    state: Any
    configurations: int


def check(
    history: list[Op],
    model: str | Model = "cas-register",
    time_limit_s: float = 10.0,
    *,
    fail_means: str = "did-not-happen",
    nil_read: str = "no-value",
    initial: Any = _DEFAULT,
    max_configurations: int = MAX_CONFIGURATIONS,
    **_ignored: Any,
) -> dict[str, Any]:
    """Checks that `history` is linearizable with respect to `model`."""
    started = time.perf_counter()
    deadline = started + time_limit_s
    if fail_means not in FAIL_MEANINGS:
        raise ValueError(f"fail_means must be one of {FAIL_MEANINGS}, not {fail_means!r}")
    if isinstance(model, Model):
        m = model
    else:
        opts: dict[str, Any] = {"nil_read": nil_read}
        if initial is not _DEFAULT:
            opts["initial"] = initial
        m = model_by_name(model, **opts)
    result: dict[str, Any] = {"valid": True, "model": m.name, "fail_means": fail_means}
    try:
        client_ops = [op for op in history if op.is_client]
        parts = m.partition(client_ops) or [(None, client_ops)]
        prepared = [(key, prepare_calls(ops, m, fail_means)) for key, ops in parts]
    except ValueError as exc:
        return {**result, "valid": "unknown", "error": f"history does not fit the model: {exc}"}
    result.update(calls=sum(len(calls) for _, calls in prepared), partitions=len(prepared))
    # Partitions take turns in slices of search steps, so that one hard key cannot spend the
    # whole budget before an easy key shows the history invalid. The first invalid partition
    # decides, as in Porcupine; the others are left unfinished.
    live = [(key, calls, _search_steps(calls, m)) for key, calls in prepared]
    configurations = 0
    held: dict[Any, int] = {}  # configurations memoised by each live search, as last told
    while live and result["valid"] is True:
        if sum(held.values()) > max_configurations:
            keys = [key for key, _, _ in live]
            result["valid"] = "unknown"
            result["error"] = (
                f"gave up at {max_configurations:,} memoised configurations (the memory "
                "bound, max_configurations)"
                + (
                    f" with {len(keys)} of {len(prepared)} keys undecided (such as {keys[0]!r})"
                    if keys[0] is not None
                    else ""
                )
            )
            break
        if time.perf_counter() > deadline:
            keys = [key for key, _, _ in live]
            result["valid"] = "unknown"
            result["error"] = f"timed out after {time_limit_s} s" + (
                f" with {len(keys)} of {len(prepared)} keys undecided (such as {keys[0]!r})"
                if keys[0] is not None
                else ""
            )
            break
        for entry in list(live):
            key, calls, steps = entry
            try:
                held[id(steps)] = next(steps)
                continue
            except StopIteration as done:
                outcome: _Outcome = done.value
            except (ValueError, TypeError) as exc:  # the model cannot read an op's value
                return {
                    **result,
                    "valid": "unknown",
                    "error": f"history does not fit the model: {exc}",
                }
            live.remove(entry)
            held.pop(id(steps), None)
            configurations += outcome.configurations
            if outcome.valid is False:
                result["valid"] = False
                result.update(_failure_report(calls, outcome, m, key))
                result["anomaly_types"] = ["nonlinearizable"]
                result["anomalies"] = {"nonlinearizable": [_anomaly(calls, outcome, m, key)]}
                if live:
                    result["partitions_unfinished"] = len(live)
                break
    result["configurations"] = configurations
    result["elapsed_s"] = round(time.perf_counter() - started, 4)
    return result


def prepare_calls(ops: list[Op], m: Model, fail_means: str) -> list[Call]:
    """Pairs client ops per process into calls, as the model and `fail_means` read them.

    Failed calls that did not happen and calls the model calls no-ops are left out.
    Raises ValueError for an op the model does not know or a completion with no invocation.
    """
    calls: list[Call] = []
    open_calls: dict[Any, Call] = {}
    for position, op in enumerate(ops):
        if op.type == "invoke":
            if op.f not in m.fs:
                raise ValueError(f"model {m.name} has no op {op.f!r} (op {op.index})")
            # A process that invokes again abandoned its previous call: it stays open-ended.
            call = Call(op, None, position, None, op.f, op.value, UNKNOWN)
            open_calls[op.process] = call
            calls.append(call)
            continue
        call_or_none = open_calls.pop(op.process, None)
        if call_or_none is None:
            raise ValueError(f"op {op.index} ({op.type} {op.f}) completes no invocation")
        call = call_or_none
        call.completion = op
        if op.type == "ok":
            call.return_position, call.output = position, op.value
        elif op.type == "fail":
            if fail_means == "did-not-happen":
                call.happened = False
            elif _timed_out(op):
                call.return_position, call.output = position, UNKNOWN
            else:
                call.return_position, call.output = position, FAILED
    return [c for c in calls if c.happened and not m.is_noop(c.f, c.input, c.output)]


def _timed_out(op: Op) -> bool:
    return (isinstance(op.value, str) and op.value in TIMEOUT_MARKERS) or (
        op.error in TIMEOUT_MARKERS
    )


def _search_steps(calls: list[Call], m: Model) -> Generator[int, None, _Outcome]:
    """Wing & Gong's search with Lowe's cache over the calls' entries (Porcupine's checkSingle).

    Node numbers: 0 is the head, call c is 2c+1 (odd), its return 2c+2 (even), 2n+1 the tail
    (never reached: the scan always stops at a return while any remain).

    Two reductions keep the search small, each sound (a configuration has a linearisation iff
    the successors still tried do):
    - read-only calls first: a pending call that never changes the state (a read) and that
      the model accepts now is linearised now, and its configuration is not tried without
      it: moving it earlier leaves every other step as it was, and whatever must precede it
      is already linearised. If the configuration with it fails, so does the one before.
    - twins: of open-ended calls with the same f and input, only the earliest pending one.
    """
    n = len(calls)
    tail = 2 * n + 1
    events = [(c.position, 2 * i + 1) for i, c in enumerate(calls)]
    events += [
        (c.return_position, 2 * i + 2) for i, c in enumerate(calls) if c.return_position is not None
    ]
    events.sort()
    order = [0, *(node for _, node in events), tail]
    nxt = [0] * (tail + 1)
    prv = [0] * (tail + 1)
    for a, b in zip(order, order[1:], strict=False):
        nxt[a] = b
        prv[b] = a
    has_return = [c.has_return for c in calls]
    remaining = sum(has_return)
    state = m.init()
    if remaining == 0:
        return _Outcome(True, [], None, state, 0)

    # Each call's transition, compiled once: the next state, or BAD where the model refuses.
    apply = [m.compile(c.f, c.input, c.output) for c in calls]
    read_only = [m.is_read_only(c.f, c.input, c.output) for c in calls]
    bits = [1 << i for i in range(n)]
    twin = _earlier_twins(calls)
    reach, unsettled = _reach_tests(calls, m, read_only)
    cache: set[tuple[int, Any]] = set()
    # The path: linearised calls (a read-only one forced as ~c) and the states before them.
    stack_calls: list[int] = []
    stack_states: list[Any] = []
    linearized = 0
    best: tuple[list[int], int, Any] = ([], -1, state)
    best_depth = -1
    steps = 0
    node = 0  # 0: a new configuration to enter; odd: a call to try; even: a return
    while True:
        steps += 1
        if steps == _SLICE_STEPS:
            steps = 0
            yield len(cache)
        if node == 0:  # entered a configuration: a read-only call that fits goes first
            node = nxt[0]
            forced = -1
            scan = node
            while scan & 1:
                c = scan >> 1
                if read_only[c] and (twin[c] < 0 or linearized >> twin[c] & 1):
                    if apply[c](state) is not BAD:
                        forced = c
                        break
                    test = reach[c]
                    if test is not None and not unsettled[c] & ~linearized and not test(state):
                        forced = -2  # this read can never be satisfied from here
                        break
                scan = nxt[scan]
            if forced == -2:
                node = -1  # a dead configuration: backtrack
            elif forced >= 0:
                key = (linearized | bits[forced], state)
                if key in cache:  # explored before, and failed: so does this one
                    node = -1  # backtrack without trying the other calls
                else:
                    cache.add(key)
                    stack_calls.append(~forced)
                    stack_states.append(state)
                    linearized = key[0]
                    if _lift(nxt, prv, 2 * forced + 1, has_return[forced]):
                        remaining -= 1
                        if remaining == 0:
                            return _Outcome(True, _path(stack_calls), None, state, len(cache))
                    node = 0
                    continue
        if node > 0 and node & 1:  # a call: try to linearise it now
            c = node >> 1
            if twin[c] >= 0 and not linearized >> twin[c] & 1:
                node = nxt[node]  # its earlier twin is still pending: that one goes first
                continue
            new_state = apply[c](state)
            if new_state is not BAD:
                key = (linearized | bits[c], new_state)
                if key not in cache:
                    cache.add(key)
                    stack_calls.append(c)
                    stack_states.append(state)
                    linearized, state = key
                    if _lift(nxt, prv, node, has_return[c]):
                        remaining -= 1
                        if remaining == 0:
                            return _Outcome(True, _path(stack_calls), None, state, len(cache))
                    node = 0
                    continue
            node = nxt[node]
            continue
        # A return: its call's window closed (or -1: a configuration known to fail). Backtrack.
        depth = len(stack_calls)
        if depth > best_depth and node > 0:
            best_depth = depth
            best = (stack_calls[:], (node >> 1) - 1, state)  # a plain copy: this runs often
        while True:
            if not stack_calls:
                return _Outcome(False, _path(best[0]), best[1], best[2], len(cache))
            c = stack_calls.pop()
            state = stack_states.pop()
            forced_call = c < 0
            if forced_call:
                c = ~c
            linearized ^= bits[c]
            call_node = 2 * c + 1
            if has_return[c]:
                remaining += 1
            _unlift(nxt, prv, call_node, has_return[c])
            if not forced_call:  # a forced call's parent fails with it: keep backtracking
                break
        node = nxt[call_node]


def _lift(nxt: list[int], prv: list[int], call_node: int, with_return: bool) -> bool:
    """Takes a call (and its return, if any) out of the list; says whether it had a return."""
    before, after = prv[call_node], nxt[call_node]
    nxt[before], prv[after] = after, before
    if with_return:
        ret = call_node + 1
        before, after = prv[ret], nxt[ret]
        nxt[before], prv[after] = after, before
    return with_return


def _unlift(nxt: list[int], prv: list[int], call_node: int, with_return: bool) -> None:
    """Puts a lifted call back, in reverse order: its return, then the call."""
    if with_return:
        ret = call_node + 1
        nxt[prv[ret]] = ret
        prv[nxt[ret]] = ret
    nxt[prv[call_node]] = call_node
    prv[nxt[call_node]] = call_node


def _path(stack_calls: list[int]) -> list[int]:
    return [c if c >= 0 else ~c for c in stack_calls]


def _reach_tests(calls: list[Call], m: Model, read_only: list[bool]) -> tuple[list[Any], list[int]]:
    """For each read with a return, the model's test that a state can still grow into what it
    saw (None where the model has none), and the resets that could save a state that cannot.

    A reset is a call that neither leaves the state alone nor only grows it (a put, a cas).
    The state the read sees is the last reset's before it (or today's), grown by appends.
    So once every reset invoked before the read's return whose state could grow into the
    read's value is linearised, a state that cannot grow into it fails the configuration.
    With many concurrent appends, this cuts each wrong order of appends as soon as a
    pending read contradicts it, where the search would otherwise carry it on until that
    read's return.
    """
    n = len(calls)
    reach: list[Any] = [
        None if c.return_position is None else m.reach(c.f, c.input, c.output) for c in calls
    ]
    unsettled = [0] * n
    if all(test is None for test in reach):  # the model never prunes so (registers)
        return reach, unsettled
    resets = sorted(
        (c.position, i, m.sets(c.f, c.input, c.output))
        for i, c in enumerate(calls)
        if not read_only[i] and not m.grows(c.f, c.input, c.output)
    )
    reset_positions = [position for position, _, _ in resets]
    for i, c in enumerate(calls):
        test = reach[i]
        if test is None or c.return_position is None:
            continue
        # Only a reset whose state could still grow into the read's value (or one whose
        # state the model cannot tell) can save a state that cannot.
        for _, j, state in resets[: bisect.bisect_left(reset_positions, c.return_position)]:
            if state is UNKNOWN or test(state):
                unsettled[i] |= 1 << j
    return reach, unsettled


def _earlier_twins(calls: list[Call]) -> list[int]:
    """For each open-ended call, the previous open-ended call with the same f and input, or -1.

    Such twins are interchangeable: both may take effect at any time after their invocations.
    If a linearisation uses the later twin while the earlier one is pending, swapping them
    gives another, so the search only ever tries the earliest pending twin. With many
    timed-out writes of a few values this prunes most of the search.
    """
    last: dict[tuple[str, Any], int] = {}
    twins = [-1] * len(calls)
    for i, c in enumerate(calls):  # calls are in invocation order
        if c.return_position is None:
            key = (c.f, freeze(c.input))
            try:
                twins[i] = last.get(key, -1)
                last[key] = i
            except TypeError:  # an unhashable input: no twins
                pass
    return twins


def _failure_report(calls: list[Call], outcome: _Outcome, m: Model, key: Any) -> dict[str, Any]:
    assert outcome.blocking is not None
    blocked = calls[outcome.blocking]
    report: dict[str, Any] = {
        "linearized": [calls[c].op_index for c in outcome.linearized],
        "failed_op": {
            "index": blocked.op_index,
            "invoke_index": blocked.invoke.index,
            "process": blocked.invoke.process,
            "f": blocked.f,
            "value": blocked.invoke.value if blocked.completion is None else blocked.output,
            "description": blocked.describe(),
        },
        "final_state": m.describe(outcome.state),
    }
    if key is not None:
        report["key"] = key
    return report


def _anomaly(calls: list[Call], outcome: _Outcome, m: Model, key: Any) -> dict[str, Any]:
    assert outcome.blocking is not None
    blocked = calls[outcome.blocking]
    ops = [blocked.invoke.index] + ([blocked.completion.index] if blocked.completion else [])
    where = f"on key {key!r}, " if key is not None else ""
    explanation = (
        f"{where}after the longest linearisable prefix found ({len(outcome.linearized)} ops, "
        f"after which {m.describe(outcome.state)}), {blocked.describe()} cannot be linearised: "
        "no order of the ops concurrent with it lets the model accept it before it returned"
    )
    anomaly: dict[str, Any] = {"ops": ops, "explanation": explanation}
    if key is not None:
        anomaly["key"] = key
    return anomaly
