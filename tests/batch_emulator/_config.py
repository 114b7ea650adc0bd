"""Knobs of the emulated Batch account: delays, quotas, limits, credentials.

Defaults are small numbers of emulator seconds so that a test advancing the clock by ten
seconds sees a pool go from `resizing` to nodes `idle`. All delays are emulator time (see
`_clock.py`), never wall time. Change them per test with `dataclasses.replace` or by
passing keyword arguments to the fixture factory.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

DEFAULT_ACCOUNT = "emulator"
# Any base64 string works as a shared key; this one is fixed so logs are reproducible.
DEFAULT_KEY = base64.b64encode(b"simfleet-batch-emulator-shared-key-0001").decode()
API_VERSION = "2025-06-01"
#: What azure-mgmt-batch 19 sends to Azure Resource Manager (the same date, another spec).
ARM_API_VERSION = "2025-06-01"
DEFAULT_SUBSCRIPTION = "5f1e0c0a-5e1f-4e1e-9a1e-0000000000e1"


@dataclass
class EmulatorConfig:
    account: str = DEFAULT_ACCOUNT
    key: str = DEFAULT_KEY
    https: bool = False
    # None: any non-empty bearer token is accepted (https only); else exactly this one.
    bearer_token: str | None = None
    # Where the account is in Azure Resource Manager (the ARM pool endpoints, `_arm.py`).
    subscription_id: str = DEFAULT_SUBSCRIPTION
    resource_group: str = "simfleet-emulator"
    location: str = "westeurope"
    arm_retry_after: int = 15  # wall seconds ARM asks a client to wait between LRO polls

    # Emulator seconds.
    allocation_delay: float = 5.0  # resize start → pool steady, new nodes `starting`
    node_start_delay: float = 2.0  # node `starting` → `idle`
    stop_resize_delay: float = 1.0  # allocation `stopping` → `steady`
    deletion_delay: float = 5.0  # job/pool `deleting` → gone
    job_terminate_delay: float = 1.0  # job `terminating` → `completed`
    # Task `preparing` → `running` on a node that already has the image (container
    # creation); Batch shows `preparing` for every run. 0: straight to running.
    task_prepare_delay: float = 1.0
    # The same, the first time a node runs an image: the image is pulled first.
    image_pull_delay: float = 1.0
    preemption_recovery_delay: float | None = None  # None: preempted nodes stay preempted
    start_task_duration: float = 1.0  # a pool's start task, `waitingforstarttask` → `idle`

    # How stale `GET /jobs/{id}/taskcounts` may be: counts are recomputed at most this
    # often (Batch: "the numbers returned may not always be up to date"). 0: always exact.
    task_counts_lag: float = 2.0

    # Account limits.
    dedicated_core_quota: int | None = None  # None: unlimited
    low_priority_core_quota: int | None = None
    pool_quota: int = 100
    active_job_quota: int = 300
    max_tasks_per_collection: int = 100
    max_body_bytes: int = 1_048_576

    # Time.
    clock_speed: float = 1.0
    start_time: float | None = None  # epoch seconds; None: the real time at start
    tick_interval: float = 0.05  # wall seconds between background ticks

    # Test mode: validate every request and response body against BatchService.json
    # and collect violations on the emulator.
    conformance: bool = False
    spec_path: str | None = None  # None: the copy shipped in batch_emulator/spec/

    # Benchmarks: keep a timed record of every request (`_requestlog.py`).
    request_log: bool = False


_CORES = re.compile(r"^(?:standard|basic)_[a-z]+?(\d+)", re.IGNORECASE)


def cores_of(vm_size: str) -> int:
    """vCPUs of an Azure VM size from its name (`Standard_D4s_v3` → 4); 1 if unknown."""
    match = _CORES.match(vm_size)
    return max(int(match.group(1)), 1) if match else 1
