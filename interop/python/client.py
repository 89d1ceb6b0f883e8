#!/usr/bin/python3
"""Proxyless gRPC interop client for minimesh, built on gRPC C-core (Debian's python3-grpcio).

It resolves an xds:/// target through the xDS server named in the bootstrap file
(GRPC_XDS_BOOTSTRAP), sends empty grpc.testing.TestService/UnaryCall requests and counts which
backend version answered (response header "x-served-by", or server_id in the response). No
generated code: the request is the empty message (zero bytes) and the response is read raw.

Usage:
  GRPC_XDS_BOOTSTRAP=/path/bootstrap.json python3 client.py --target xds:///my-app --count 4000
  GRPC_XDS_BOOTSTRAP=/path/bootstrap.json python3 client.py --target xds:///my-app --seconds 20

Output (stdout, one JSON object per line):
  every second:  {"t":3,"v1":180,"v2":20,"errors":0}          (counts for that second)
  at the end:    {"total":true,"v1":..,"v2":..,"errors":..,"first_error":"..","error_kinds":{..}}
Exit status: 0 if at least one RPC succeeded, 1 if none did, 2 on bad usage.

Run it with Debian's interpreter (/usr/bin/python3): python3-grpcio installs into
/usr/lib/python3/dist-packages, which other interpreters (pyenv, venvs) do not see.
"""

import argparse
import json
import os
import re
import sys
import threading
import time

try:
    import grpc
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.stderr.write(
        "client.py: cannot import grpc (%s); install Debian's python3-grpcio "
        "(bash .ci/install-interop.sh) and run with /usr/bin/python3\n" % e
    )
    sys.exit(2)

METHOD = "/grpc.testing.TestService/UnaryCall"
ERROR_BACKOFF = 0.05  # seconds


def server_id_of(buf):
    """Return field 4 (server_id) of a serialized grpc.testing.SimpleResponse, or ''."""
    i = 0
    n = len(buf)

    def varint():
        nonlocal i
        result = 0
        shift = 0
        while True:
            if i >= n or shift > 63:
                raise ValueError("bad varint")
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    try:
        while i < n:
            key = varint()
            field, wire = key >> 3, key & 7
            if wire == 0:
                varint()
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            elif wire == 2:
                length = varint()
                if field == 4:
                    return bytes(buf[i : i + length]).decode("utf-8", "replace")
                i += length
            else:
                return ""
    except ValueError:
        return ""
    return ""


class Stats:
    def __init__(self, verbose):
        self.lock = threading.Lock()
        self.total = {"v1": 0, "v2": 0, "errors": 0}
        self.bucket = {"v1": 0, "v2": 0, "errors": 0}
        self.first_error = ""
        self.error_kinds = {}
        self.verbose = verbose
        self.tick = 0

    def ok(self, version):
        if version not in ("v1", "v2"):
            self.error(
                "unrecognised backend version %s (no x-served-by header or server_id)"
                % json.dumps(version)
            )
            return
        with self.lock:
            self.total[version] += 1
            self.bucket[version] += 1

    def error(self, msg):
        kind = re.sub(r"[0-9]+(\.[0-9]+)*", "N", msg)[:200]
        with self.lock:
            self.total["errors"] += 1
            self.bucket["errors"] += 1
            if not self.first_error:
                self.first_error = msg
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
        if self.verbose:
            sys.stderr.write("rpc error: %s\n" % msg)

    def flush_second(self, only_if_nonempty=False):
        with self.lock:
            b = self.bucket
            if only_if_nonempty and b["v1"] + b["v2"] + b["errors"] == 0:
                return
            self.bucket = {"v1": 0, "v2": 0, "errors": 0}
            self.tick += 1
            line = {"t": self.tick, "v1": b["v1"], "v2": b["v2"], "errors": b["errors"]}
        emit(line)


_out_lock = threading.Lock()


def emit(obj):
    with _out_lock:
        sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
        sys.stdout.flush()


def positive(kind):
    def parse(s):
        v = kind(s)
        if v <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return v

    return parse


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target", default="xds:///my-app")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--count", type=positive(int), help="send N RPCs, then stop")
    mode.add_argument("--seconds", type=positive(float), help="send RPCs for S seconds, then stop")
    p.add_argument("--concurrency", type=positive(int), default=4, help="RPCs in flight at once")
    p.add_argument(
        "--rate", type=positive(float), default=0,
        help="start at most R RPCs per second (default: as fast as they complete)",
    )
    p.add_argument("--rpc-timeout-ms", type=positive(float), default=5000, help="deadline of each RPC")
    p.add_argument(
        "--timeout", type=positive(float), default=100,
        help="hard limit on the whole run in --count mode (seconds)",
    )
    p.add_argument("--verbose", "-v", action="store_true")
    args = p.parse_args()

    if not os.environ.get("GRPC_XDS_BOOTSTRAP") and not os.environ.get("GRPC_XDS_BOOTSTRAP_CONFIG"):
        sys.stderr.write("client.py: warning: GRPC_XDS_BOOTSTRAP is not set; xds:/// targets will fail\n")

    stats = Stats(args.verbose)
    channel = grpc.insecure_channel(args.target)
    # Identity (de)serializers: the request is b'' (an empty SimpleRequest), the response raw bytes.
    call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
    rpc_timeout = args.rpc_timeout_ms / 1000.0

    start = time.monotonic()
    limit = args.seconds if args.seconds else args.timeout
    deadline = start + limit
    stop = threading.Event()
    issued = [0]
    started = [0]  # RPCs started, for --rate
    issued_lock = threading.Lock()

    def one_rpc():
        try:
            resp, c = call.with_call(b"", timeout=rpc_timeout)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            name = code.name if code is not None else "UNKNOWN"
            details = e.details() if hasattr(e, "details") else str(e)
            stats.error("%s: %s" % (name, details))
            # Back off a little so that a fast-failing channel does not spin (or burn --count).
            time.sleep(ERROR_BACKOFF)
            return
        except Exception as e:  # noqa: BLE001 - count anything unexpected as an error
            stats.error("%s: %s" % (type(e).__name__, e))
            time.sleep(ERROR_BACKOFF)
            return
        served_by = ""
        for k, v in c.initial_metadata() or ():
            if k == "x-served-by":
                served_by = v.decode() if isinstance(v, bytes) else str(v)
                break
        stats.ok(served_by or server_id_of(resp or b""))

    def worker():
        while not stop.is_set():
            if args.count:
                with issued_lock:
                    if issued[0] >= args.count:
                        return
                    issued[0] += 1
            if args.rate:
                with issued_lock:
                    due = start + started[0] / args.rate
                    started[0] += 1
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if stop.is_set():
                    return
            one_rpc()

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    for w in workers:
        w.start()

    reason = ""
    next_tick = start + 1.0
    while True:
        now = time.monotonic()
        if now >= deadline:
            reason = "seconds elapsed" if args.seconds else "timeout reached"
            break
        if not any(w.is_alive() for w in workers):
            reason = "count reached"
            break
        if now >= next_tick:
            stats.flush_second()
            next_tick += 1.0
            continue
        wake = min(next_tick, deadline)
        # Join the first live worker briefly so that the end of --count is noticed promptly.
        for w in workers:
            if w.is_alive():
                w.join(timeout=max(0.0, min(wake - time.monotonic(), 0.05)))
                break
    stop.set()
    stats.flush_second(only_if_nonempty=True)
    with stats.lock:
        total = dict(stats.total)
        first_error = stats.first_error
        kinds = dict(stats.error_kinds)
    emit(
        {
            "total": True,
            "v1": total["v1"],
            "v2": total["v2"],
            "errors": total["errors"],
            "first_error": first_error,
            "error_kinds": kinds,
            "elapsed_ms": int((time.monotonic() - start) * 1000),
            "reason": reason,
        }
    )
    code = 0 if total["v1"] + total["v2"] > 0 else 1
    # Do not wait for RPCs still in flight (daemon threads) or a graceful channel shutdown:
    # the run must end on time even if the xDS server or the backends hang.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
