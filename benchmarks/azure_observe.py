"""What observing a big fleet on Azure Batch costs: requests per job and memory.

Starts the Batch emulator (tests/batch_emulator) in its own process, fills it with
``JOBS`` jobs of ``PER_JOB`` running simfleet tasks through the real SDK (bodies built by
simfleet's own mapping), then measures in a fresh interpreter, so that nothing of the
seeding is counted:

* memory: the process's RSS after the first (cold) observation and after ``passes`` more,
  and its peak (``VmHWM``), beside the RSS before the backend was made;
* requests: a steady resync of ``passes`` observations ``interval`` seconds apart on a
  simulated monotonic clock (the backend's listing ages follow it), in requests per job.

    python benchmarks/azure_observe.py [JOBS] [PER_JOB] [--passes N] [--interval S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the emulator lives in tests/
REVISION = "0123456789"  # any ten characters: the tasks only have to look like simfleet's


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60):
        pass


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() // 1024


def _peak_kib() -> int:
    """This process image's peak RSS. Not ``ru_maxrss``: Linux carries that across exec,
    so a child started by the (big) seeding process would report the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


async def _seed(url: str, jobs: int, per_job: int) -> None:
    """Create the pool, the jobs and their tasks as simfleet would, 16 requests at a time."""
    from azure.batch import models as m
    from azure.batch.aio import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from controller.backends import DEFAULT_FLEET
    from controller.backends.azure import _mapping
    from controller.planner import CreatePool, NewTask, task_id, template_of
    from tests.batch_emulator._config import DEFAULT_ACCOUNT, DEFAULT_KEY
    from tests.planner.conftest import pool_spec, simulation

    spec = pool_spec(vmSize="standard_d64s_v5", taskSlotsPerNode=256)
    nodes = -(-jobs * per_job // 256)
    client = BatchClient(url, AzureNamedKeyCredential(DEFAULT_ACCOUNT, DEFAULT_KEY))
    limit = asyncio.Semaphore(16)
    try:
        await client.create_pool(
            _mapping.pool_create(CreatePool("sims", spec, nodes, 0), DEFAULT_FLEET)
        )

        async def one_job(j: int) -> None:
            name = f"sim{j:04d}"
            sim = simulation(name, simulators=per_job)
            template = template_of(sim)
            async with limit:
                await client.create_job(_mapping.job_create(name, "sims", DEFAULT_FLEET))
            slots = [NewTask(task_id(name, s, REVISION, 0), s, REVISION, 0) for s in range(per_job)]
            bodies = [_mapping.task_create(name, template, slot) for slot in slots]
            for i in range(0, len(bodies), 100):
                async with limit:
                    await client.create_task_collection(
                        name, m.BatchTaskGroup(task_values=bodies[i : i + 100])
                    )

        await asyncio.gather(*(one_job(j) for j in range(jobs)))
    finally:
        await client.close()
    _post(f"{url}/_emulator/advance", {"seconds": 30})


async def _measure(url: str, jobs: int, passes: int, interval: float) -> dict[str, float]:
    from controller.backends.azure import AzureBackend, AzureSettings
    from tests.batch_emulator._config import DEFAULT_ACCOUNT, DEFAULT_KEY

    before = _rss_kib()
    now = [0.0]
    settings = AzureSettings(url, DEFAULT_ACCOUNT, DEFAULT_KEY)
    backend = AzureBackend(settings, monotonic=lambda: now[0])
    try:
        started = time.perf_counter()
        first = await backend.observe()
        cold = time.perf_counter() - started
        tasks = sum(len(j.tasks) for j in first.jobs.values())
        del first
        after_cold = _rss_kib()
        base = sum(backend.request_counts().values())
        seconds = 0.0
        for _ in range(passes):
            now[0] += interval
            started = time.perf_counter()
            await backend.observe()
            seconds += time.perf_counter() - started
        steady = sum(backend.request_counts().values()) - base
    finally:
        await backend.close()
    return {
        "tasks": tasks,
        "rss_before_mib": before / 1024,
        "rss_after_cold_mib": after_cold / 1024,
        "rss_after_mib": _rss_kib() / 1024,
        "peak_mib": _peak_kib() / 1024,
        "cold_seconds": cold,
        "steady_pass_seconds": seconds / max(passes, 1),
        "requests_per_job": steady / max(passes, 1) / jobs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("jobs", type=int, nargs="?", default=500)
    parser.add_argument("per_job", type=int, nargs="?", default=200)
    parser.add_argument("--passes", type=int, default=120)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.measure:
        figures = asyncio.run(_measure(args.measure, args.jobs, args.passes, args.interval))
        print(json.dumps(figures))
        return
    port = _port()
    url = f"http://127.0.0.1:{port}"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "tests.batch_emulator", "--port", str(port),
         "--allocation-delay", "1", "--node-start-delay", "1"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
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
        asyncio.run(_seed(url, args.jobs, args.per_job))
        child = subprocess.run(
            [sys.executable, __file__, str(args.jobs), str(args.per_job), "--passes",
             str(args.passes), "--interval", str(args.interval), "--measure", url],
            cwd=REPO, capture_output=True, text=True, check=True,
        )  # fmt: skip
        figures = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        emulator.terminate()
        emulator.wait(10)
    print(
        f"azure observe: {args.jobs} jobs x {args.per_job} = {figures['tasks']:.0f} running "
        f"tasks, {args.passes} steady passes every {args.interval:g} s"
    )
    print(
        f"  RSS: {figures['rss_before_mib']:.0f} MiB before the backend, "
        f"{figures['rss_after_cold_mib']:.0f} MiB after the first observation, "
        f"{figures['rss_after_mib']:.0f} MiB after the steady passes, "
        f"peak {figures['peak_mib']:.0f} MiB"
    )
    print(
        f"  time: first observation {figures['cold_seconds']:.2f} s, "
        f"steady pass {figures['steady_pass_seconds'] * 1000:.0f} ms"
    )
    print(f"  steady resync: {figures['requests_per_job']:.3f} requests per job per pass")


if __name__ == "__main__":
    main()
