"""`python -m tests.batch_emulator` as another process, driven by the SDK and the control API."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
from azure.batch.aio import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from .helpers import pool_options

ROOT = Path(__file__).resolve().parents[2]


async def test_standalone_server() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.batch_emulator", "--port", "0", "--account", "standalone",
        "--speed", "0", "--conformance", "--request-log", "--latency", "0.05",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        endpoint = banner.decode().split(" at ")[1].strip()
        assert endpoint.startswith("http://127.0.0.1:")
        key = (await process.stdout.readline()).decode()  # "  account: standalone"
        key = (await process.stdout.readline()).decode().split("key:")[1].strip()

        async with BatchClient(endpoint, AzureNamedKeyCredential("standalone", key)) as client:
            await client.create_pool(pool_options())
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{endpoint}/_emulator/advance", json={"seconds": 60}) as r:
                    assert r.status == 200
                async with session.get(f"{endpoint}/_emulator/state") as r:
                    state = await r.json()
                async with session.get(f"{endpoint}/_emulator/requests") as r:
                    log = await r.json()
            pool = await client.get_pool("pool-1")
        assert (pool.allocation_state, pool.current_dedicated_nodes) == ("steady", 2)
        assert state["counters"]["Pools_CreatePool"] == {"201": 1}
        assert state["violations"] == []
        [(arrived, answered, operation, path, outcome, method, agent)] = log["requests"]
        assert (operation, path, outcome, method) == ("Pools_CreatePool", "/pools", 201, "POST")
        assert "azsdk-python-batch/" in agent
        assert answered - arrived >= 0.05  # the injected latency, from --latency
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=20)
