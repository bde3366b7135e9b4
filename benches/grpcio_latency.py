#!/usr/bin/env python3
"""RPC latency from Python's grpcio against a running `gradlab serve` (issue 20).

Generates the stubs from proto/ into a temporary folder (needs grpcio and grpcio-tools),
submits one short job, waits for it, then times each call CALLS times, one after the other,
and prints the median and mean in milliseconds.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install grpcio grpcio-tools
    gradlab serve --addr 127.0.0.1:50051 --database /tmp/lat.db &
    /tmp/venv/bin/python benches/grpcio_latency.py 127.0.0.1:50051 [--token T] [--ca-cert ca.pem]
"""

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent


def stubs():
    out = tempfile.mkdtemp(prefix="gradlab-stubs-")
    rc = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}", f"--grpc_python_out={out}",
                      str(ROOT / "proto/gradlab/v1/gradlab.proto")])
    if rc != 0:
        sys.exit(f"protoc failed ({rc})")
    for d in ("gradlab", "gradlab/v1"):
        (pathlib.Path(out) / d / "__init__.py").touch()
    sys.path.insert(0, out)
    from gradlab.v1 import gradlab_pb2, gradlab_pb2_grpc
    return gradlab_pb2, gradlab_pb2_grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("--token")
    ap.add_argument("--ca-cert")
    ap.add_argument("--calls", type=int, default=500)
    a = ap.parse_args()
    pb, rpc = stubs()
    if a.ca_cert:
        creds = grpc.ssl_channel_credentials(pathlib.Path(a.ca_cert).read_bytes())
        channel = grpc.secure_channel(a.addr, creds)
    else:
        channel = grpc.insecure_channel(a.addr)
    meta = [("authorization", f"Bearer {a.token}")] if a.token else []
    stub = rpc.ExperimentsStub(channel)
    job = stub.SubmitJob(pb.JobSpec(activation="tanh", depth=3, width=16, steps=200, seed=1), metadata=meta)
    while stub.GetJob(pb.JobId(id=job.id), metadata=meta).state != pb.JOB_STATE_SUCCEEDED:
        time.sleep(0.02)

    def first_message():
        for _ in stub.WatchJob(pb.WatchRequest(job_id=job.id), metadata=meta):
            return

    calls = [
        ("GetJob", lambda: stub.GetJob(pb.JobId(id=job.id), metadata=meta)),
        ("ListJobs (a page of 1)", lambda: stub.ListJobs(pb.ListJobsRequest(page_size=1), metadata=meta)),
        ("GetHistory (1 layer, 1 metric, 200 steps)",
         lambda: stub.GetHistory(pb.HistoryRequest(job_id=job.id, layers=[0], metrics=["grad_norm"]), metadata=meta)),
        ("WatchJob, first message", first_message),
        ("SubmitJob", lambda: stub.SubmitJob(pb.JobSpec(depth=1, width=4, steps=1), metadata=meta)),
    ]
    print(f"grpcio {grpc.__version__}, {a.calls} calls each")
    print("| call | median ms | mean ms |")
    print("|---|---|---|")
    for name, call in calls:
        for _ in range(20):
            call()
        ms = []
        for _ in range(a.calls):
            t = time.perf_counter()
            call()
            ms.append((time.perf_counter() - t) * 1e3)
        print(f"| {name} | {statistics.median(ms):.3f} | {statistics.mean(ms):.3f} |")


if __name__ == "__main__":
    main()
