"""The system under test: a Total Order Broadcast node, run as `python -m tobtest.node`.

The protocol cores in `tobtest.node.protocols` are pure state machines; `server` is the thin
asyncio shell that gives them sockets, a clock and a log. The wire protocol is in PROTOCOL.md.
"""
