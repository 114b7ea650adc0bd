"""Run the Batch emulator as a standalone server.

    python -m tests.batch_emulator --port 8999 [--https] [--account NAME] [--key BASE64]
        [--profile realistic --time-scale 60] [--allocation-delay SECONDS] ...

It listens on 127.0.0.1 only, prints the endpoint, credentials and (with --https) the CA
file to trust, and runs until interrupted. Control it over HTTP under `/_emulator/`
(see `_control.py`), e.g. `curl -XPOST 127.0.0.1:8999/_emulator/advance -d '{"seconds":30}'`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys

from ._config import DEFAULT_ACCOUNT, DEFAULT_KEY, EmulatorConfig
from ._emulator import BatchEmulator
from ._profiles import DEFAULT_SCALE, PROFILES, REAL_DURATIONS, time_scaled

#: The durations (`EmulatorConfig` fields) each of which an option sets, in seconds.
DELAYS = tuple(REAL_DURATIONS)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.batch_emulator", description=(__doc__ or "").strip().splitlines()[0]
    )
    parser.add_argument(
        "--port", type=int, default=8999, help="TCP port on 127.0.0.1 (0: any free port)"
    )
    parser.add_argument(
        "--https", action="store_true", help="serve TLS with a fresh self-signed CA"
    )
    parser.add_argument("--account", default=DEFAULT_ACCOUNT)
    parser.add_argument("--key", default=DEFAULT_KEY, help="base64 shared key")
    parser.add_argument(
        "--bearer-token", default=None, help="accept only this bearer token (https)"
    )
    parser.add_argument("--speed", type=float, default=1.0, help="emulator seconds per wall second")
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="default",
        help="realistic: Batch's own durations divided by --time-scale (_profiles.py); "
        "the delay options below override single values",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=DEFAULT_SCALE,
        help="with --profile realistic: real seconds per emulator second",
    )
    for name in DELAYS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=None)
    parser.add_argument("--core-quota", type=int, default=None, help="dedicated core quota")
    parser.add_argument(
        "--conformance", action="store_true", help="collect spec violations (see /_emulator/state)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="wall seconds added to every request"
    )
    parser.add_argument(
        "--request-log",
        action="store_true",
        help="keep a timed record of every request (see /_emulator/requests)",
    )
    return parser.parse_args(argv)


def _config(args: argparse.Namespace) -> EmulatorConfig:
    base = time_scaled(args.time_scale) if args.profile == "realistic" else EmulatorConfig()
    delays = {name: getattr(args, name) for name in DELAYS if getattr(args, name) is not None}
    return dataclasses.replace(
        base,
        account=args.account,
        key=args.key,
        https=args.https,
        bearer_token=args.bearer_token,
        clock_speed=args.speed,
        dedicated_core_quota=args.core_quota,
        conformance=args.conformance,
        request_log=args.request_log,
        **delays,
    )


async def _serve(args: argparse.Namespace) -> None:
    config = _config(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with BatchEmulator(config, port=args.port) as emulator:
        emulator.faults.latency = args.latency
        print(f"Batch emulator (api-version 2025-06-01) at {emulator.endpoint}", flush=True)
        print(f"  account: {emulator.account}\n  key:     {emulator.key}", flush=True)
        if args.https:
            print(f"  CA file: {emulator.ca_file}", flush=True)
            print(  # ARM's pool endpoints: https and bearer tokens only
                f"  ARM:     SIMFLEET_ARM_ENDPOINT={emulator.endpoint} "
                f"AZURE_SUBSCRIPTION_ID={emulator.subscription_id} "
                f"AZURE_RESOURCE_GROUP={emulator.resource_group}",
                flush=True,
            )
        print(f"  control: {emulator.endpoint}/_emulator/state", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(_serve(_parse(sys.argv[1:] if argv is None else argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
