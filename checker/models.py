"""Sequential models for the linearizability checker: pure step functions on hashable states.

    >>> m = model_by_name("cas-register", initial=0)
    >>> m.step(m.init(), "cas", [0, 3], [0, 3])
    (True, 3)
    >>> m.step(3, "read", None, 4)
    (False, 3)

A model is Porcupine's shape: `init()` gives the first state, and `step(state, f, input,
output)` says whether an op with that input (the invocation's value) and output (the
completion's value) is legal in `state`, and the state after it. States must be hashable:
the checker memoises (linearised calls, state) pairs. `output` may be one of two markers:

- `UNKNOWN`: the result was never seen (an `info` op, or a timed-out read); the model
  assumes the op took effect as invoked, whatever it would have returned;
- `FAILED`: the op ran and reported failure (the checker's `fail_means="returned-false"`,
  Porcupine's reading of etcd logs): a failed cas saw a value other than its `from`.

`is_noop(f, input, output)` is true when a call can neither fail nor change the state (a read
whose value is unknown); the checker drops such calls. `is_read_only(f, input, output)` is
true when a call never changes the state, whatever it is (a read, a failed cas): the checker
linearises such a call as soon as the model accepts it, without trying other orders.
`partition(history)` splits a history into independent sub-histories (P-compositionality),
or returns None. `compile(f, input, output)` gives the call's transition as one function of
the state, returning the next state or `BAD` (what the checker's inner loop calls): by
default `step` behind a cache per state; the register and kv models build a direct one, so
the search pays no dispatch on `f` and no `freeze` per step.

Models (`MODELS`): `register`, `cas-register`, `kv` (per-key, partitioned by the op's `key`
field or a Jepsen-independent `[key value]` tuple), `mutex`, `append-log` (a total-order
broadcast seen as an object: appends, and reads of the whole log), `multi-register`
(Knossos's: `txn` ops of `[f key value]` micro-ops). Options: `initial` (the starting value),
`nil_read` ("no-value": a read of nil saw the empty register; "unknown": it matches anything,
as in Knossos).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any

from tobtest.histories.edn import freeze
from tobtest.histories.op import Op


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


UNKNOWN: Any = _Marker("UNKNOWN")
FAILED: Any = _Marker("FAILED")
BAD: Any = _Marker("BAD")  # a compiled transition's answer when the model refuses the call
_MISS: Any = _Marker("MISS")
Transition = Callable[[Any], Any]
NIL_READS = ("no-value", "unknown")


class Model:
    """Base model: subclasses set `name` and `fs` and define `init` and `step`."""

    name = "model"
    fs: frozenset[str] = frozenset()
    read_fs: frozenset[str] = frozenset()

    def __init__(self, initial: Any = None, nil_read: str = "no-value") -> None:
        if nil_read not in NIL_READS:
            raise ValueError(f"nil_read must be one of {NIL_READS}, not {nil_read!r}")
        self.initial = initial
        self.nil_unknown = nil_read == "unknown"

    def init(self) -> Hashable:
        return freeze(self.initial)

    def step(self, state: Any, f: str, input_value: Any, output_value: Any) -> tuple[bool, Any]:
        raise NotImplementedError

    def compile(self, f: str, input_value: Any, output_value: Any) -> Transition:
        """The call as a function of the state: the next state, or BAD if refused.

        This default asks `step` once per state and remembers the answer; subclasses with
        cheap steps return a closure that does the work directly."""
        step = self.step
        seen: dict[Any, Any] = {}

        def apply(state: Any) -> Any:
            new_state = seen.get(state, _MISS)
            if new_state is _MISS:
                ok, new_state = step(state, f, input_value, output_value)
                seen[state] = new_state = new_state if ok else BAD
            return new_state

        return apply

    def grows(self, f: str, input_value: Any, output_value: Any) -> bool:
        """True when the call only ever extends the state (an append), so that `reach`
        stays true along it."""
        return False

    def reach(self, f: str, input_value: Any, output_value: Any) -> Callable[[Any], bool] | None:
        """For a read: a test that a state can still become what the read saw through
        growing calls alone; None when the model cannot tell (the checker then never prunes
        on it). It must never say False of a state that can grow into the value."""
        return None

    def sets(self, f: str, input_value: Any, output_value: Any) -> Any:
        """The state a call that neither reads nor grows leaves, whatever came before (a
        put's value), or UNKNOWN when that depends on the state or the model cannot say."""
        return UNKNOWN

    def is_noop(self, f: str, input_value: Any, output_value: Any) -> bool:
        """True when the call is legal in every state and changes none (a blind read)."""
        return f in self.read_fs and self.read_unknown(output_value)

    def is_read_only(self, f: str, input_value: Any, output_value: Any) -> bool:
        """True when `step` leaves every state as it is (it may still refuse some)."""
        return f in self.read_fs or self.is_noop(f, input_value, output_value)

    def read_unknown(self, output_value: Any) -> bool:
        return (
            output_value is UNKNOWN
            or output_value is FAILED
            or (output_value is None and self.nil_unknown)
        )

    def partition(self, history: list[Op]) -> list[tuple[Any, list[Op]]] | None:
        return None

    def describe(self, state: Any) -> str:
        return repr(state)


class Register(Model):
    """A read/write register. Reads return the value; writes return nothing."""

    name = "register"
    fs = frozenset({"read", "write"})
    read_fs = frozenset({"read"})

    def step(self, state: Any, f: str, input_value: Any, output_value: Any) -> tuple[bool, Any]:
        if f == "read":
            if self.read_unknown(output_value):
                return True, state
            return freeze(output_value) == state, state
        if f == "write":
            if output_value is FAILED:  # a write that reported failure did not happen
                return True, state
            return True, freeze(input_value)
        return False, state

    def is_noop(self, f: str, input_value: Any, output_value: Any) -> bool:
        return super().is_noop(f, input_value, output_value) or (
            f == "write" and output_value is FAILED
        )

    def compile(self, f: str, input_value: Any, output_value: Any) -> Transition:
        # The same answers as `step`, with the call's values frozen once, not per state.
        if f in self.read_fs:
            return _compile_read(self.read_unknown(output_value), output_value)
        if f == "write":
            return _same if output_value is FAILED else _constant(freeze(input_value))
        if f == "cas" and f in self.fs:
            return _compile_cas(input_value, output_value)
        return super().compile(f, input_value, output_value)

    def describe(self, state: Any) -> str:
        return f"the register holds {state!r}"


class CasRegister(Register):
    """A register with compare-and-set: `cas [from to]` sets `to` when it holds `from`."""

    name = "cas-register"
    fs = frozenset({"read", "write", "cas"})

    def step(self, state: Any, f: str, input_value: Any, output_value: Any) -> tuple[bool, Any]:
        if f != "cas":
            return super().step(state, f, input_value, output_value)
        expected, new = _pair(input_value)
        if output_value is FAILED:
            return freeze(expected) != state, state
        if freeze(expected) != state:
            return False, state
        return True, freeze(new)

    def is_read_only(self, f: str, input_value: Any, output_value: Any) -> bool:
        return super().is_read_only(f, input_value, output_value) or _still_cas(
            f, input_value, output_value
        )


class Kv(Model):
    """Independent keys, each a register with cas and append (Porcupine's kv: get/put/append).

    The state the step sees is one key's value: `partition` always splits by key first.
    `append` concatenates strings (or extends a tuple). The initial value defaults to "", as
    a Porcupine kv `get` of a missing key returns the empty string.
    """

    name = "kv"
    fs = frozenset({"read", "get", "write", "put", "cas", "append"})
    read_fs = frozenset({"read", "get"})

    def __init__(self, initial: Any = "", nil_read: str = "no-value") -> None:
        super().__init__(initial, nil_read)

    def step(self, state: Any, f: str, input_value: Any, output_value: Any) -> tuple[bool, Any]:
        if f in self.read_fs:
            if self.read_unknown(output_value):
                return True, state
            return freeze(output_value) == state, state
        if output_value is FAILED and f != "cas":
            return True, state
        if f in ("write", "put"):
            return True, freeze(input_value)
        if f == "append":
            if state is None:
                return True, freeze(input_value)
            if isinstance(state, tuple):
                return True, (*state, freeze(input_value))
            return True, state + input_value
        if f == "cas":
            expected, new = _pair(input_value)
            if output_value is FAILED:
                return freeze(expected) != state, state
            return (True, freeze(new)) if freeze(expected) == state else (False, state)
        return False, state

    def is_noop(self, f: str, input_value: Any, output_value: Any) -> bool:
        return super().is_noop(f, input_value, output_value) or (
            output_value is FAILED and f != "cas" and f not in self.read_fs
        )

    def compile(self, f: str, input_value: Any, output_value: Any) -> Transition:
        # The same answers as `step`; an append remembers the states it built, so a state
        # reached again is the same object, its hash already computed.
        if f in self.read_fs:
            return _compile_read(self.read_unknown(output_value), output_value)
        if output_value is FAILED and f != "cas":
            return _same
        if f in ("write", "put"):
            return _constant(freeze(input_value))
        if f == "cas":
            return _compile_cas(input_value, output_value)
        if f != "append":
            return super().compile(f, input_value, output_value)
        item = freeze(input_value)
        built: dict[Any, Any] = {}

        def append(state: Any) -> Any:
            new_state = built.get(state, _MISS)
            if new_state is _MISS:
                if state is None:
                    new_state = item
                elif isinstance(state, tuple):
                    new_state = (*state, item)
                else:
                    new_state = state + input_value
                built[state] = new_state
            return new_state

        return append

    def grows(self, f: str, input_value: Any, output_value: Any) -> bool:
        return f == "append" and isinstance(input_value, str) and output_value is not FAILED

    def sets(self, f: str, input_value: Any, output_value: Any) -> Any:
        if output_value is FAILED:
            return UNKNOWN
        if f in ("write", "put"):
            return freeze(input_value)
        if f == "cas" and isinstance(input_value, (list, tuple)) and len(input_value) == 2:
            return freeze(input_value[1])  # if it happens at all, it leaves `to`
        return UNKNOWN

    def reach(self, f: str, input_value: Any, output_value: Any) -> Callable[[Any], bool] | None:
        if f not in self.read_fs or self.read_unknown(output_value):
            return None
        seen = output_value
        if not isinstance(seen, str):
            return None

        def can_grow_into(state: Any) -> bool:
            # Appends of strings only extend a string; any other state: no opinion.
            return not isinstance(state, str) or seen.startswith(state)

        return can_grow_into

    def is_read_only(self, f: str, input_value: Any, output_value: Any) -> bool:
        return super().is_read_only(f, input_value, output_value) or _still_cas(
            f, input_value, output_value
        )

    def partition(self, history: list[Op]) -> list[tuple[Any, list[Op]]] | None:
        """Splits by `op.extra["key"]`, or by the key of a `[key value]` value (Jepsen's
        independent histories; the value is unwrapped). A completion without a key takes its
        invocation's."""
        by_key: dict[Any, list[Op]] = {}
        open_key: dict[Any, Any] = {}
        for op in history:
            if not op.is_client:
                continue
            if "key" in op.extra:
                key = freeze(op.extra["key"])
            elif isinstance(op.value, (list, tuple)) and len(op.value) == 2:
                key = freeze(op.value[0])
                op = replace(op, value=op.value[1])
            elif op.type != "invoke" and op.process in open_key:
                key = open_key[op.process]
            else:
                raise ValueError(f"kv op {op.index} has no key (a :key field or [key value])")
            if op.type == "invoke":
                open_key[op.process] = key
            else:
                open_key.pop(op.process, None)
            by_key.setdefault(key, []).append(op)
        return list(by_key.items())

    def describe(self, state: Any) -> str:
        return f"the key holds {state!r}"


class Mutex(Model):
    """A lock: `acquire` needs it free, `release` needs it held. The state is `held`."""

    name = "mutex"
    fs = frozenset({"acquire", "release"})

    def __init__(self, initial: Any = False, nil_read: str = "no-value") -> None:
        super().__init__(bool(initial), nil_read)

    def step(self, state: Any, f: str, input_value: Any, output_value: Any) -> tuple[bool, Any]:
        # A failed acquire saw the lock held; a failed release saw it free.
        if f == "acquire":
            return (state, state) if output_value is FAILED else (not state, True)
        if f == "release":
            return (not state, state) if output_value is FAILED else (state, False)
        return False, state

    def is_read_only(self, f: str, input_value: Any, output_value: Any) -> bool:
        return output_value is FAILED

    def describe(self, state: Any) -> str:
        return "the lock is held" if state else "the lock is free"


class AppendLog(Model):
    """An append-only log, as a total-order broadcast looks from outside: `append` (or
    `broadcast`) adds its value at the end, `read` returns the whole log as a list."""

    name = "append-log"
    fs = frozenset({"append", "broadcast", "read"})
    read_fs = frozenset({"read"})

    def __init__(self, initial: Any = (), nil_read: str = "no-value") -> None:
        super().__init__(tuple(freeze(v) for v in initial or ()), nil_read)

    def step(self, state: Any, f: str, input_value: Any, output_value: Any) -> tuple[bool, Any]:
        if f == "read":
            if self.read_unknown(output_value):
                return True, state
            return freeze(list(output_value)) == state, state
        if f not in self.fs:
            return False, state
        if output_value is FAILED:
            return True, state
        return True, (*state, freeze(input_value))

    def is_noop(self, f: str, input_value: Any, output_value: Any) -> bool:
        return super().is_noop(f, input_value, output_value) or (
            f != "read" and output_value is FAILED
        )

    def describe(self, state: Any) -> str:
        return f"the log is {list(state)!r}"


class MultiRegister(Model):
    """Knossos's multi-register: `txn` ops whose value is a list of `[read|write key value]`
    micro-ops, applied atomically. The state is a sorted tuple of (key, value) pairs."""

    name = "multi-register"
    fs = frozenset({"txn"})

    def __init__(self, initial: Any = None, nil_read: str = "no-value") -> None:
        super().__init__(dict(initial or {}), nil_read)

    def init(self) -> Hashable:
        return tuple(sorted(self.initial.items(), key=repr))

    def step(self, state: Any, f: str, input_value: Any, output_value: Any) -> tuple[bool, Any]:
        if f != "txn":
            return False, state
        if output_value is FAILED:
            return True, state
        known = output_value is not UNKNOWN
        values = dict(state)
        for mop in output_value if known else input_value:
            mop_f, key, value = mop
            if mop_f == "write":
                values[key] = freeze(value)
            elif mop_f == "read":
                if not known or (value is None and self.nil_unknown):
                    continue
                if values.get(key) != freeze(value):
                    return False, state
            else:
                return False, state
        return True, tuple(sorted(values.items(), key=repr))

    def is_noop(self, f: str, input_value: Any, output_value: Any) -> bool:
        if output_value is FAILED:
            return True
        mops = input_value if output_value is UNKNOWN else output_value
        try:
            return all(
                m[0] == "read" and (output_value is UNKNOWN or (m[2] is None and self.nil_unknown))
                for m in mops
            )
        except (TypeError, IndexError):
            return False

    def is_read_only(self, f: str, input_value: Any, output_value: Any) -> bool:
        if output_value is FAILED:
            return True
        mops = input_value if output_value is UNKNOWN else output_value
        try:
            return all(m[0] == "read" for m in mops)
        except (TypeError, IndexError):
            return False

    def describe(self, state: Any) -> str:
        return "registers " + ", ".join(f"{k}={v!r}" for k, v in state)


def _still_cas(f: str, input_value: Any, output_value: Any) -> bool:
    """A cas that cannot change the state: it failed, or it sets the value it expects."""
    if f != "cas":
        return False
    if output_value is FAILED:
        return True
    try:
        expected, new = _pair(input_value)
    except ValueError:
        return False
    return bool(freeze(expected) == freeze(new))


def _same(state: Any) -> Any:
    return state


def _compile_read(unknown: bool, output_value: Any) -> Transition:
    if unknown:
        return _same
    seen = freeze(output_value)

    def read(state: Any) -> Any:
        return state if state == seen else BAD

    return read


def _constant(value: Any) -> Transition:
    def write(state: Any) -> Any:
        return value

    return write


def _compile_cas(input_value: Any, output_value: Any) -> Transition:
    expected, new = _pair(input_value)
    expected, new = freeze(expected), freeze(new)
    if output_value is FAILED:  # it ran and saw another value

        def failed_cas(state: Any) -> Any:
            return BAD if expected == state else state

        return failed_cas

    def cas(state: Any) -> Any:
        return new if expected == state else BAD

    return cas


def _pair(value: Any) -> tuple[Any, Any]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"a cas value must be [from to], not {value!r}")
    return value[0], value[1]


MODELS: dict[str, type[Model]] = {
    m.name: m for m in (Register, CasRegister, Kv, Mutex, AppendLog, MultiRegister)
}


def model_by_name(name: str, **opts: Any) -> Model:
    """Builds a model by name; `opts` are `initial` and `nil_read`."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(sorted(MODELS))})") from None
    return cls(**opts)
