"""Maelstrom nodes under tobtest's faults: `tobtest run --maelstrom 'CMD' --workload W`.

    tobtest run --maelstrom 'python3 raft.py' --workload lin-kv --nemesis partition

A node that speaks Maelstrom's protocol (JSON lines on stdin/stdout, `init`/`init_ok`,
`msg_id`/`in_reply_to`, error codes) runs as a child of a per-node shim (`shim.py`), which
owns its stdin and stdout: it sends `init`, serves tobtest's clients on the node's client
port, carries node-to-node messages over tobtest's proxy links (so every partition and
link fault applies) and passes messages for Maelstrom's `lin-kv`, `seq-kv` and `lin-tso`
services to one store the harness hosts (`services.py`). `kind.py` is the node kind
(the contract of `tobtest.node_kind`): how a shim is launched and what such a node can do.
"""
