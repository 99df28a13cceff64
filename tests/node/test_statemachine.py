"""The replicated state machine: list-append txns and registers, the same on every node."""

from tobtest.node.statemachine import StateMachine


def test_txn_appends_and_reads_see_earlier_appends_in_order():
    sm = StateMachine()
    assert sm.apply({"op": "txn", "txn": [["append", 1, 5], ["r", 1, None]]}) == [
        ["append", 1, 5],
        ["r", 1, [5]],
    ]
    assert sm.apply({"op": "txn", "txn": [["r", 2, None], ["append", 1, 6], ["r", 1, None]]}) == [
        ["r", 2, []],
        ["append", 1, 6],
        ["r", 1, [5, 6]],
    ]


def test_int_and_string_keys_are_distinct():
    sm = StateMachine()
    sm.apply({"op": "txn", "txn": [["append", 1, "a"]]})
    assert sm.apply({"op": "txn", "txn": [["r", "1", None]]}) == [["r", "1", []]]


def test_registers_write_cas_read():
    sm = StateMachine()
    assert sm.apply({"op": "read", "key": "x"}) == {"ok": True, "value": None}
    assert sm.apply({"op": "cas", "key": "x", "from": 0, "to": 1}) == {"ok": False, "value": None}
    assert sm.apply({"op": "write", "key": "x", "value": 0}) == {"ok": True}
    assert sm.apply({"op": "cas", "key": "x", "from": 0, "to": 1}) == {"ok": True}
    assert sm.read_register("x") == 1


def test_plain_and_malformed_messages_have_no_effect():
    sm = StateMachine()
    for message in (42, "hello", None, [1, 2], {"op": "txn", "txn": "nope"}, {"op": "cas"}):
        assert sm.apply(message) is None
    assert sm.apply({"op": "txn", "txn": [["zap", 1, 2], "odd"]}) == [["zap", 1, 2], "odd"]
    assert sm.lists == {} and sm.registers == {}
    assert sm.applied == 7


def test_two_replicas_applying_the_same_order_agree():
    commands = [{"op": "txn", "txn": [["append", k % 3, k], ["r", (k + 1) % 3, None]]}
                for k in range(50)]  # fmt: skip
    a, b = StateMachine(), StateMachine()
    assert [a.apply(c) for c in commands] == [b.apply(c) for c in commands]
