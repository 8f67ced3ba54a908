#!/usr/bin/env python3
"""Plays the X-Ray daemon locally: listens on UDP (default 127.0.0.1:2000) for the subsegments the
functions send (shared::xray, enabled by AWS_XRAY_DAEMON_ADDRESS) and prints each trace's spans as
a tree with their durations once its `request` span arrives. Standard library only.

    infra/local/xray-listen.py [--port 2000]
    AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2000 make up     # then call the API with a sampled trace
"""
import argparse
import json
import socket
from collections import defaultdict


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2000)
    args = ap.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.host, args.port))
    print(f"[xray] listening on udp {args.host}:{args.port}", flush=True)
    pending = defaultdict(list)  # trace id -> subsegments
    while True:
        data, _ = sock.recvfrom(65536)
        header, _, body = data.decode("utf-8", "replace").partition("\n")
        try:
            doc = json.loads(body)
        except ValueError:
            print(f"[xray] not a document: {data[:80]!r}", flush=True)
            continue
        pending[doc["trace_id"]].append(doc)
        if doc["name"] == "request":
            print_tree(doc["trace_id"], pending.pop(doc["trace_id"]))


def print_tree(trace_id, docs):
    children = defaultdict(list)
    ids = {d["id"] for d in docs}
    roots = []
    for d in sorted(docs, key=lambda d: d["start_time"]):
        (children[d["parent_id"]] if d.get("parent_id") in ids else roots).append(d)
    print(f"trace {trace_id}", flush=True)

    def show(d, depth):
        ms = (d["end_time"] - d["start_time"]) * 1000
        print(f"{'  ' * (depth + 1)}{d['name']:<{40 - 2 * depth}} {ms:8.2f} ms", flush=True)
        for c in children[d["id"]]:
            show(c, depth + 1)

    for r in roots:
        show(r, 0)


if __name__ == "__main__":
    main()
