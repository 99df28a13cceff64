"""Small Maelstrom nodes for tests, well- and ill-behaved: `python maelstrom_nodes.py KIND`.

Standard library only, importing nothing from tobtest (they stand for nodes of any origin):

- `echo`: answers `init`, `topology`, `echo`, `time` (its clock) and, per key,
  `read`/`write` from memory.
- `exit`: exits with 3 at once, before `init`.
- `silent`: reads stdin and never answers.
- `chatty`: prints a line that is not JSON before answering `init`.
- `garbage-later` / `huge-later`: answer `init`, then on their first request print a line
  that is not JSON / a line of 2 MiB.
- `txn`: Maelstrom's txn-list-append, the whole database kept in the `lin-kv` service under
  one key, updated by cas (retried on precondition-failed): serializable through the
  service alone, so it tests the services and the txn workload together.
"""

from __future__ import annotations

import json
import sys
import time

KIND = sys.argv[1] if len(sys.argv) > 1 else "echo"
ROOT = "db"


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def reply(request: dict, body: dict) -> None:
    send({"src": NODE[0], "dest": request["src"],
          "body": {**body, "in_reply_to": request["body"]["msg_id"]}})  # fmt: skip


NODE = ["?"]
STORE: dict = {}
# Txn node: requests waiting for the lin-kv service, by our msg_id.
WAITING: dict[int, tuple[dict, str, object]] = {}
NEXT_ID = [0]


def kv_call(body: dict, request: dict, step: str, state: object = None) -> None:
    NEXT_ID[0] += 1
    WAITING[NEXT_ID[0]] = (request, step, state)
    send({"src": NODE[0], "dest": "lin-kv", "body": {**body, "msg_id": NEXT_ID[0]}})


def txn_start(request: dict) -> None:
    kv_call({"type": "read", "key": ROOT}, request, "read")


def txn_apply(request: dict, db: dict) -> tuple[dict, list]:
    new = {k: list(v) for k, v in db.items()}
    done = []
    for f, k, v in request["body"]["txn"]:
        key = json.dumps(k)
        if f == "r":
            done.append([f, k, list(new[key]) if key in new else None])
        else:
            new.setdefault(key, []).append(v)
            done.append([f, k, v])
    return new, done


def txn_step(message: dict) -> None:
    request, step, state = WAITING.pop(message["body"]["in_reply_to"])
    body = message["body"]
    if step == "read":
        db = body.get("value") if body.get("type") == "read_ok" else None
        new, done = txn_apply(request, db or {})
        cas = {"type": "cas", "key": ROOT, "from": db, "to": new, "create_if_not_exists": True}
        kv_call(cas, request, "cas", done)
    elif body.get("type") == "cas_ok":
        reply(request, {"type": "txn_ok", "txn": state})
    elif body.get("code") == 22:
        txn_start(request)  # someone else committed first: read again, apply again
    else:
        reply(request, {"type": "error", "code": 13, "text": f"lin-kv said {body}"})


def main() -> None:
    if KIND == "exit":
        sys.exit(3)
    if KIND == "chatty":
        print("hello, this is not JSON", flush=True)
    answered = 0
    for line in sys.stdin:
        message = json.loads(line)
        body = message["body"]
        kind = body.get("type")
        if KIND == "silent":
            continue
        if kind == "init":
            NODE[0] = body["node_id"]
            reply(message, {"type": "init_ok"})
            continue
        if "in_reply_to" in body and KIND == "txn":
            txn_step(message)
            continue
        answered += 1
        if KIND == "garbage-later":
            print("oops: not JSON", flush=True)
        elif KIND == "huge-later":
            sys.stdout.write("[" + "0," * (1 << 20) + "0]\n")
            sys.stdout.flush()
        elif kind == "txn" and KIND == "txn":
            txn_start(message)
        elif kind == "topology":
            reply(message, {"type": "topology_ok"})
        elif kind == "time":
            reply(message, {"type": "time_ok", "time": time.time()})
        elif kind == "echo":
            reply(message, {"type": "echo_ok", "echo": body["echo"]})
        elif kind == "write":
            STORE[json.dumps(body["key"])] = body["value"]
            reply(message, {"type": "write_ok"})
        elif kind == "read" and json.dumps(body.get("key")) in STORE:
            reply(message, {"type": "read_ok", "value": STORE[json.dumps(body["key"])]})
        else:
            reply(message, {"type": "error", "code": 20 if kind == "read" else 10})
    time.sleep(0)


if __name__ == "__main__":
    main()
