"""What one request to the Batch emulator costs at 0 ms injected latency.

Benchmarks against the emulator must measure simfleet, not the emulator. The classic way
an HTTP server gets measured instead is a response written in two parts (headers, then
body) on a kept-alive connection: Nagle's algorithm holds the second part until the
client's delayed ACK, about 40 ms per request. This sends 200 sequential requests over one
kept-alive connection, signed with the shared key like the SDK's, for a read, a small
answer and a write with a body, and also through the real SDK; a Nagle stall shows as a
p50 near 40 ms instead of well under one.

    python benchmarks/emulator_cost.py [--conformance]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the emulator lives in tests/
N = 200
QUERY = "api-version=2025-06-01"
DATE = "Tue, 01 Dec 2026 18:00:00 GMT"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raw(
    port: int, method: str, path: str, body: Callable[[int], object] | None = None, n: int = N
) -> list[float]:
    """``n`` signed requests on one kept-alive connection; seconds each."""
    from tests.batch_emulator._auth import sign, string_to_sign
    from tests.batch_emulator._config import DEFAULT_ACCOUNT, DEFAULT_KEY

    connection = http.client.HTTPConnection("127.0.0.1", port)
    times = []
    for i in range(n):
        data = None if body is None else json.dumps(body(i)).encode()
        headers = {"ocp-date": DATE}
        if data is not None:
            headers["Content-Type"] = "application/json; odata=minimalmetadata"
            headers["Content-Length"] = str(len(data))
        text = string_to_sign(method, path, QUERY, headers, DEFAULT_ACCOUNT)
        headers["Authorization"] = f"SharedKey {DEFAULT_ACCOUNT}:{sign(DEFAULT_KEY, text)}"
        started = time.perf_counter()
        connection.request(method, f"{path}?{QUERY}", body=data, headers=headers)
        response = connection.getresponse()
        response.read()
        times.append(time.perf_counter() - started)
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status}")
    connection.close()
    return times


async def _sdk(url: str) -> list[float]:
    """``N`` pool listings through azure.batch.aio (one pooled connection, sequential)."""
    from azure.batch.aio import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from tests.batch_emulator._config import DEFAULT_ACCOUNT, DEFAULT_KEY

    client = BatchClient(url, AzureNamedKeyCredential(DEFAULT_ACCOUNT, DEFAULT_KEY))
    times = []
    try:
        for _ in range(N):
            started = time.perf_counter()
            _ = [p async for p in client.list_pools(select=["id"])]
            times.append(time.perf_counter() - started)
    finally:
        await client.close()
    return times


def _row(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p50, p90 = statistics.median(ordered), ordered[int(len(ordered) * 0.9)]
    return (
        f"  {name:<34} {sum(ordered) * 1000:>8.0f} ms  {p50 * 1000:>6.2f}  {p90 * 1000:>6.2f}"
        f"  {ordered[-1] * 1000:>6.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--conformance", action="store_true", help="validate like the tests")
    args = parser.parse_args()
    port = _port()
    command = [sys.executable, "-m", "tests.batch_emulator", "--port", str(port)]
    emulator = subprocess.Popen(
        command + (["--conformance"] if args.conformance else []),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        job = {"id": "job", "poolInfo": {"poolId": "p"}}
        _raw(port, "POST", "/jobs", lambda _: job, n=1)  # the job whose counts are read
        rows = [
            ("GET /pools", _raw(port, "GET", "/pools")),
            ("GET /jobs/{id}/taskcounts", _raw(port, "GET", "/jobs/job/taskcounts")),
            (
                "POST /jobs (a body, 201)",
                _raw(port, "POST", "/jobs", lambda i: {**job, "id": f"job{i}"}),
            ),
            ("SDK list_pools (client included)", asyncio.run(_sdk(f"http://127.0.0.1:{port}"))),
        ]
    finally:
        emulator.terminate()
        emulator.wait(10)
    mode = "conformance checks on" if args.conformance else "conformance checks off"
    print(f"emulator: {N} sequential requests on one kept-alive connection, 0 ms latency, {mode}")
    print(f"  {'request':<34} {'total':>11}  {'p50':>6}  {'p90':>6}  {'max':>6}  (ms)")
    for name, times in rows:
        print(_row(name, times))
    stalled = sum(t >= 0.035 for _, times in rows for t in times)
    print(f"  requests of 35 ms or more (a Nagle / delayed-ACK stall): {stalled}")


if __name__ == "__main__":
    main()
