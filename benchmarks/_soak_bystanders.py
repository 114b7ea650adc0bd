"""Things that are not the soak fleet's, made before the daemon starts; they must survive.

simfleet only ever touches what its own fleet created. The soak puts look-alikes next to
its fleet and checks after every step that each is still there, untouched:

* local: a user's own ``sleep``, and *another fleet* on the same machine, started with
  ``simfleet apply`` from its own specs and state directory, whose pool and simulation
  carry the very names the soak fleet uses (``soak``, ``sim0``). Both carry a marker of
  their own, so the soak's census never counts them.
* azure: a pool, a job and a running task created straight through the Batch API
  without simfleet's ownership mark.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

from tests.scenarios.conftest import (
    EmulatorDriver,
    Fleet,
    kill_groups,
    processes_with,
    wait_until,
)

FOREIGN_SPEC = """\
apiVersion: simfleet/v1
kind: Pool
metadata: {{name: soak}}
spec: {{vmSize: standard_d2s_v5, taskSlotsPerNode: 4, nodes: {{dedicated: 1}}}}
---
apiVersion: simfleet/v1
kind: Simulation
metadata: {{name: sim0}}
spec:
  pool: soak
  simulators: 2
  image: other/sim:1
  command: [sleep, "100000"]
  env: {{SCENARIO_MARKER: {marker}}}
"""


class LocalBystanders:
    """A user's process and another fleet's two simulators (see the module docstring)."""

    def __init__(self, fleet: Fleet) -> None:
        self.marker = f"{fleet.marker}-bystander"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SCENARIO_MARKER": self.marker}
        self.user = subprocess.Popen(
            ["sleep", "100000"],
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        other = fleet.root / "other-fleet"
        (other / "specs").mkdir(parents=True)
        (other / "specs" / "fleet.yaml").write_text(FOREIGN_SPEC.format(marker=self.marker))
        subprocess.run(
            [sys.executable, "-m", "controller", "apply", "--specs", "specs"],
            cwd=other,
            env={k: v for k, v in os.environ.items() if not k.startswith("SIMFLEET_")},
            capture_output=True,
            timeout=60,
            check=True,
        )
        wait_until(
            lambda: len(processes_with(self.marker, comm="sleep")) == 3,
            timeout=30,
            what="the other fleet's two simulators and the user's process",
        )
        self.expected = processes_with(self.marker)

    def describe(self) -> str:
        return "a user's process and another fleet's pool `soak` with simulation `sim0` (2)"

    def problems(self) -> list[str]:
        alive = processes_with(self.marker)
        return [
            f"bystander process {pid} ({comm}) is gone"
            for pid, comm in sorted(self.expected.items())
            if alive.get(pid) != comm
        ]

    def close(self) -> None:
        """Kill every bystander process group (the user's process leads its own)."""
        kill_groups(processes_with(self.marker))
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.user.wait(5)


class AzureBystanders:
    """A pool, job and task in the Batch account without simfleet's ownership mark."""

    POOL = "bystander-pool"
    JOB = "bystander-job"
    TASK = "bystander-task"

    def __init__(self, driver: EmulatorDriver) -> None:
        from azure.batch import BatchClient
        from azure.batch import models as m
        from azure.core.credentials import AzureNamedKeyCredential

        self.driver = driver
        env = driver.env()
        account, key = env["AZURE_BATCH_ACCOUNT"], env["AZURE_BATCH_ACCESS_KEY"]
        credential = AzureNamedKeyCredential(account, key)
        image = m.BatchVmImageReference(
            publisher="microsoft-dsvm", offer="ubuntu-hpc", sku="2204", version="latest"
        )
        with BatchClient(driver.url, credential) as client:
            client.create_pool(
                m.BatchPoolCreateOptions(
                    id=self.POOL,
                    vm_size="standard_d2s_v5",
                    virtual_machine_configuration=m.VirtualMachineConfiguration(
                        image_reference=image, node_agent_sku_id="batch.node.ubuntu 22.04"
                    ),
                    target_dedicated_nodes=1,
                )
            )
            client.create_job(
                m.BatchJobCreateOptions(id=self.JOB, pool_info=m.BatchPoolInfo(pool_id=self.POOL))
            )
            client.create_task(
                self.JOB, m.BatchTaskCreateOptions(id=self.TASK, command_line="sleep 100000")
            )
        deadline = time.monotonic() + 30
        while self.problems():
            if time.monotonic() > deadline:
                raise AssertionError(f"bystanders never came up: {self.problems()}")
            time.sleep(0.2)

    def describe(self) -> str:
        return f"pool {self.POOL}, job {self.JOB} with running task {self.TASK}, not simfleet's"

    def problems(self) -> list[str]:
        state = self.driver.state()
        pool = state["pools"].get(self.POOL)
        job = state["jobs"].get(self.JOB)
        task = state["tasks"].get(self.JOB, {}).get(self.TASK)
        problems = []
        if pool is None or pool[0] != "active" or pool[2] != 1:
            problems.append(f"pool {self.POOL} is {pool} (want active with 1 node)")
        if job is None or job[0] != "active":
            problems.append(f"job {self.JOB} is {job} (want active)")
        if task != "running":
            problems.append(f"task {self.TASK} is {task} (want running)")
        return problems

    def close(self) -> None:
        """Nothing to do: the emulator goes away with its process."""


Bystanders = LocalBystanders | AzureBystanders
