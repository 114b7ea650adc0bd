"""The Azure backend through the real azure-batch SDK over HTTP against the emulator.

Every request body simfleet sends and every response the emulator returns is checked
against BatchService.json by the emulator fixture (a violation fails the test).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
from collections import Counter
from typing import Any

import pytest
from pydantic import SecretStr

from controller.backends import (
    OutputGoneError,
    OutputStream,
    PermanentBackendError,
    TransientBackendError,
    UnreachableBackendError,
)
from controller.backends.azure import AzureBackend, AzureSettings
from controller.backends.azure._tails import GONE_NOTE
from controller.planner import (
    AddTasks,
    CreateJob,
    DeleteJob,
    Desired,
    ExitReason,
    JobState,
    NewTask,
    PoolConfig,
    SimulatorState,
    StopReason,
    StopTask,
    template_of,
)
from controller.planner._replacement import job_id, pool_id
from controller.reconcile import Executor, run_pass
from tests.batch_emulator._emulator import BatchEmulator
from tests.batch_emulator._faults import Fault
from tests.planner.conftest import desired, pool_spec, simulation

from .conftest import clock_of, counts_catch_up, settings_for


async def converge(
    backend: AzureBackend, want: Desired, emulator: BatchEmulator, passes: int = 12
) -> Any:
    """Run passes, advancing the emulator 5 s between them, until nothing is left to do."""
    result = None
    for _ in range(passes):
        result = await run_pass(want, backend, clock_of(emulator))
        if not result.plan.actions and all(s.ready == s.desired for s in result.status.simulations):
            return result
        emulator.advance(5)
    raise AssertionError(f"not converged: {result.status if result else None}")


def operations(backend: AzureBackend) -> Counter[str]:
    return Counter({op: n for (op, _outcome), n in backend.request_counts().items()})


AUTO = {"sims": pool_spec(nodes={"dedicated": "auto", "max": 100})}
ONE_NODE = {"sims": pool_spec(nodes={"dedicated": 1, "spot": 0})}


class TestConverging:
    async def test_250_simulators_come_up_with_bulk_adds_and_list_queries(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        want = desired(simulation(simulators=250), pools=AUTO)
        result = await converge(backend, want, emulator)
        assert result.status.simulations[0].ready == 250
        ops = operations(backend)
        assert ops["POST /jobs/{id}/addtaskcollection"] == 3  # ⌈250 / 100⌉
        assert ops["POST /pools"] == 1
        assert ops["POST /jobs"] == 1
        assert not any(op.startswith("GET /jobs/{id}/tasks/{id}") for op in ops)  # no GET per task
        # a steady observation: list pools, list jobs, every pool's node counts and the
        # job's task counts only (healthy nodes: no node listing)
        backend.requests.counts.clear()
        await backend.observe()
        assert operations(backend) == Counter(
            {
                "GET /pools": 1,
                "GET /jobs": 1,
                "GET /nodecounts": 1,
                "GET /jobs/{id}/taskcounts": 1,
            }
        )

    async def test_pool_is_sized_and_nodes_carry_the_ownership_mark(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await converge(backend, desired(simulation(simulators=9), pools=AUTO), emulator)
        observed = await backend.observe()
        pool = observed.pools["sims"]
        assert pool.owned
        assert (pool.target_dedicated, pool.current_dedicated) == (3, 3)  # 9 on 4 slots
        assert pool.config.vm_size == "standard_d4s_v5"
        assert observed.jobs["cartpole"].owned


class TestObservation:
    async def test_tasks_are_listed_again_when_their_counts_move(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await converge(backend, desired(simulation(simulators=3), pools=AUTO), emulator)
        await backend.observe()
        backend.requests.counts.clear()
        task = (await backend.observe()).jobs["cartpole"].tasks[0]
        assert operations(backend)["GET /jobs/{id}/tasks"] == 0  # counts unchanged: reused
        emulator.finish_task("cartpole", task.id, exit_code=1)
        counts_catch_up(emulator)
        after = await backend.observe()
        assert operations(backend)["GET /jobs/{id}/tasks"] == 1
        assert next(t for t in after.jobs["cartpole"].tasks if t.id == task.id).exit is not None

    async def test_simfleets_own_changes_are_always_listed(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await converge(backend, desired(simulation(simulators=2), pools=AUTO), emulator)
        task = (await backend.observe()).jobs["cartpole"].tasks[0]
        await backend.execute(StopTask("cartpole", task.id, 0, StopReason.SCALE_DOWN))
        backend.requests.counts.clear()
        after = await backend.observe()
        assert operations(backend)["GET /jobs/{id}/tasks"] == 1
        stopped = next(t for t in after.jobs["cartpole"].tasks if t.id == task.id)
        assert stopped.state is SimulatorState.EXITED


class TestSimulatorLife:
    async def test_a_failed_simulator_is_restarted_as_a_new_attempt_after_backoff(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        want = desired(simulation(simulators=2), pools=AUTO)
        await converge(backend, want, emulator)
        first = (await backend.observe()).jobs["cartpole"].tasks[1]
        emulator.finish_task("cartpole", first.id, exit_code=3, stderr="boom\n")
        counts_catch_up(emulator)
        result = await run_pass(want, backend, clock_of(emulator))
        assert result.plan.actions == ()  # waiting out the back-off (10 s)
        row = result.status.simulations[0].simulators[1]
        assert row.state == "waiting"
        assert row.last_exit is not None
        assert row.last_exit.exit_code == 3
        emulator.advance(11)
        await converge(backend, want, emulator)
        tasks = {t.id: t for t in (await backend.observe()).jobs["cartpole"].tasks}
        assert tasks[first.id].exit is not None
        assert tasks[first.id].exit.reason is ExitReason.FAILED  # old task kept for its logs
        replacement = next(t for t in tasks.values() if t.slot == 1 and t.live)
        assert (replacement.attempt, replacement.restarts, replacement.failures) == (1, 1, 1)

    async def test_lagging_counts_delay_a_restart_but_never_double_a_slot(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        want = desired(simulation(simulators=3), pools=AUTO)
        await converge(backend, want, emulator)
        crashed = (await backend.observe()).jobs["cartpole"].tasks[1]
        emulator.finish_task("cartpole", crashed.id, exit_code=137, stderr="Killed\n")
        restarted = False
        for _ in range(40):  # 0.5 s apart: the lag (2 s), the back-off (10 s), a restart
            result = await run_pass(want, backend, clock_of(emulator))
            for job in emulator.state.world.jobs.values():  # the truth, not the counts
                live = [t.id for t in job.tasks.values() if t.state != "completed"]
                slots = Counter(int(tid.split("-s")[1].split("-")[0]) for tid in live)
                assert max(slots.values()) == 1, f"a doubled slot: {sorted(live)}"
            observed = result.observed.jobs["cartpole"].tasks
            restarted = restarted or any(t.slot == 1 and t.attempt == 1 for t in observed)
            emulator.advance(0.5)
        assert restarted
        result = await converge(backend, want, emulator)
        assert [s.ready for s in result.status.simulations] == [3]

    @pytest.mark.parametrize(
        ("code", "words"),
        [
            ("ContainerInvalidImage", "manifest for myacr.azurecr.io/cartpole:broken not found"),
            ("ContainerInvalidRegistry", 'Get "https://myacr.azurecr.io/v2/": unauthorized'),
            ("ContainerMiscError", "no space left on device"),
        ],
    )
    async def test_a_pull_failure_reaches_the_last_exit_with_its_code_and_details(
        self, backend: AzureBackend, emulator: BatchEmulator, code: str, words: str
    ) -> None:
        emulator.break_image("cartpole:broken", code=code)
        image = "myacr.azurecr.io/cartpole:broken"
        want = desired(simulation(simulators=1, image=image), pools=AUTO)
        for _ in range(4):
            result = await run_pass(want, backend, clock_of(emulator))
            emulator.advance(5)
        sim = result.status.simulations[0]
        assert code in sim.message
        last = sim.simulators[0].last_exit
        assert last is not None
        assert (last.reason, last.exit_code, last.failure_code) == (ExitReason.FAILED, None, code)
        assert words in last.message  # Batch's details: the container engine's own words


class TestStarting:
    async def test_a_task_pulling_its_image_is_pending_and_said_to_be_starting(
        self, make_batch_emulator: Any
    ) -> None:
        """Batch's ``preparing``: the task has its node, which pulls the image (minutes the
        first time on Batch): pending to the planner, "starting" in status."""
        emulator = await make_batch_emulator(image_pull_delay=600)
        backend = AzureBackend(settings_for(emulator), listing_max_age=0)
        try:
            want = desired(simulation(simulators=2), pools=ONE_NODE)
            for _ in range(6):  # the pool allocates, its node starts, the tasks go to it
                result = await run_pass(want, backend, clock_of(emulator))
                emulator.advance(5)
            result = await run_pass(want, backend, clock_of(emulator))
            tasks = result.observed.jobs["cartpole"].tasks
            assert {(t.state, t.starting) for t in tasks} == {(SimulatorState.PENDING, True)}
            [sim] = result.status.simulations
            assert "2 starting on their node (image pull, container start)" in sim.message
            assert "waiting for a free slot" not in sim.message
            emulator.advance(600)  # pulled: running, and no longer said to be starting
            counts_catch_up(emulator)
            result = await run_pass(want, backend, clock_of(emulator))
            tasks = result.observed.jobs["cartpole"].tasks
            assert {(t.state, t.starting) for t in tasks} == {(SimulatorState.RUNNING, False)}
        finally:
            await backend.close()


class TestPoolsAndJobs:
    async def test_spot_preemption_requeues_without_a_duplicate(
        self, emulator: BatchEmulator
    ) -> None:
        # A requeue onto free slots leaves the task counts unchanged; list every pass here
        # so the requeued tasks themselves are visible at once.
        backend = AzureBackend(settings_for(emulator), listing_max_age=0)
        pools = {"sims": pool_spec(nodes={"dedicated": 0, "spot": 2})}
        want = desired(simulation(simulators=4), pools=pools)
        await converge(backend, want, emulator)
        emulator.preempt("sims", count=1)
        result = await run_pass(want, backend, clock_of(emulator))
        assert not any(isinstance(a, AddTasks) for a in result.plan.actions)
        tasks = result.observed.jobs["cartpole"].tasks
        assert len([t for t in tasks if t.live]) == 4
        # Requeued onto the other node, preparing again: pending, not lost nor doubled.
        assert SimulatorState.PENDING in {t.state for t in tasks}
        # Batch counts only requeues a user asked for (a shrink), not a preemption.
        assert sum(t.requeues for t in tasks) == 0
        await backend.close()

    async def test_a_core_quota_shows_as_a_resize_error(self, make_batch_emulator: Any) -> None:
        emulator = await make_batch_emulator(dedicated_core_quota=8)
        backend = AzureBackend(settings_for(emulator))
        try:
            want = desired(simulation(simulators=16), pools=AUTO)  # 4 nodes × 4 cores > 8
            for _ in range(4):
                result = await run_pass(want, backend, clock_of(emulator))
                emulator.advance(10)
            assert "AccountCoreQuotaReached" in result.status.pools[0].message
        finally:
            await backend.close()

    async def test_deletion_is_asynchronous_and_recreation_waits(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await backend.execute(CreateJob("cartpole", "sims"))
        await backend.execute(DeleteJob("cartpole"))
        observed = await backend.observe()
        assert observed.jobs["cartpole"].state is JobState.DELETING
        with pytest.raises(TransientBackendError) as caught:
            await backend.execute(CreateJob("cartpole", "sims"))
        assert caught.value.code == "JobBeingDeleted"
        emulator.advance(10)
        assert "cartpole" not in (await backend.observe()).jobs


class TestThrottling:
    async def test_retry_after_reaches_the_caller(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        emulator.faults.inject(Fault.throttle(retry_after=7))
        with pytest.raises(TransientBackendError) as caught:
            await backend.observe()
        assert caught.value.retry_after == 7


class StaticToken:
    """An AsyncTokenCredential with a fixed token, standing in for DefaultAzureCredential."""

    def __init__(self, token: str = "emulator-token") -> None:
        self.token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        pass


class TestAuthentication:
    async def test_a_bearer_token_over_https(self, make_batch_emulator: Any) -> None:
        emulator = await make_batch_emulator(https=True)
        settings = AzureSettings(emulator.endpoint, emulator.account, None)
        backend = AzureBackend(
            settings, credential=StaticToken(), connection_verify=emulator.ca_file
        )
        try:
            await backend.execute(CreateJob("cartpole", "sims"))
            assert (await backend.observe()).jobs["cartpole"].owned
        finally:
            await backend.close()

    async def test_a_wrong_shared_key_is_one_permanent_line_that_says_to_check_the_key(
        self, emulator: BatchEmulator
    ) -> None:
        settings = AzureSettings(emulator.endpoint, emulator.account, "d3Jvbmcta2V5")
        backend = AzureBackend(settings)
        try:
            with pytest.raises(PermanentBackendError) as caught:
                await backend.observe()
            message = str(caught.value)
            assert "403 AuthenticationFailed" in message
            assert "check AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY" in message
            assert "\n" not in message
            assert "MAC signature" not in message  # nor the signature and what was signed
            assert caught.value.code == "AuthenticationFailed"
        finally:
            await backend.close()

    async def test_an_expired_token_is_a_permanent_error_that_says_so(
        self, make_batch_emulator: Any
    ) -> None:
        emulator = await make_batch_emulator(https=True)
        claims = base64.urlsafe_b64encode(json.dumps({"exp": int(emulator.now) - 60}).encode())
        token = StaticToken(f"e30.{claims.decode().rstrip('=')}.sig")
        settings = AzureSettings(emulator.endpoint, emulator.account, None)
        backend = AzureBackend(settings, credential=token, connection_verify=emulator.ca_file)
        try:
            with pytest.raises(PermanentBackendError) as caught:
                await backend.observe()
            message = str(caught.value)
            assert "401 AuthenticationFailed: Batch refused the access token" in message
            assert "(The access token expiry UTC time" in message
            assert "\n" not in message
        finally:
            await backend.close()

    def test_settings_come_from_the_az_batch_variables_and_hide_the_key(self) -> None:
        settings = AzureSettings.from_environ(
            {
                "AZURE_BATCH_ENDPOINT": "https://acct.westeurope.batch.azure.com/",
                "AZURE_BATCH_ACCOUNT": "acct",
                "AZURE_BATCH_ACCESS_KEY": "c2VjcmV0",
            }
        )
        assert settings.endpoint == "https://acct.westeurope.batch.azure.com"
        assert "c2VjcmV0" not in repr(settings)
        with pytest.raises(PermanentBackendError, match="AZURE_BATCH_ACCOUNT"):
            AzureSettings.from_environ({"AZURE_BATCH_ENDPOINT": "https://x"})

    def test_an_endpoint_as_az_prints_it_is_https(self) -> None:
        """`az batch account show --query accountEndpoint` prints the host alone."""
        settings = AzureSettings.from_environ(
            {"AZURE_BATCH_ENDPOINT": "acct.westeurope.batch.azure.com", "AZURE_BATCH_ACCOUNT": "a"}
        )
        assert settings.endpoint == "https://acct.westeurope.batch.azure.com"


class TestReplacement:
    async def test_a_changed_vm_size_moves_the_simulators_to_a_marked_new_pool(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await converge(backend, desired(simulation(simulators=2), pools=AUTO), emulator)
        bigger = {
            "sims": pool_spec(vmSize="standard_d8s_v5", nodes={"dedicated": "auto", "max": 100})
        }
        new_pool = pool_id("sims", PoolConfig.of(bigger["sims"]))
        new_job = job_id("cartpole", new_pool, "sims")
        want = desired(simulation(simulators=2), pools=bigger)
        for _ in range(40):  # until the old job and pool are gone
            await run_pass(want, backend, clock_of(emulator))
            observed = await backend.observe()
            if set(observed.pools) == {new_pool} and set(observed.jobs) == {new_job}:
                break
            emulator.advance(5)
        else:
            raise AssertionError(f"not replaced: {observed}")
        result = await converge(backend, want, emulator)
        assert result.status.simulations[0].ready == 2
        pool, job = observed.pools[new_pool], observed.jobs[new_job]
        assert (pool.spec_pool, pool.config.vm_size) == ("sims", "standard_d8s_v5")
        assert (job.simulation, job.pool) == ("cartpole", new_pool)
        assert sorted(t.slot for t in job.tasks if t.live) == [0, 1]
        for task in job.tasks:
            body = emulator.task(new_job, task.id)
            env = {e["name"]: e["value"] for e in body["environmentSettings"]}
            assert env["SIMFLEET_SIMULATION"] == "cartpole"

    async def test_a_changed_vm_size_held_is_reported_not_applied(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await converge(backend, desired(simulation(simulators=2), pools=AUTO), emulator)
        bigger = {
            "sims": pool_spec(
                vmSize="standard_d8s_v5",
                nodes={"dedicated": "auto", "max": 100},
                replacement="Hold",
            )
        }
        result = await run_pass(
            desired(simulation(simulators=2), pools=bigger), backend, clock_of(emulator)
        )
        assert result.plan.actions == ()
        assert "needs replacement: vmSize standard_d4s_v5 → standard_d8s_v5" in (
            result.status.pools[0].message
        )


class TestLargeBodies:
    async def test_collections_over_1_mb_are_split_without_deadlock(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        """400 tasks with ~11 KB of env each: every 100-task chunk is over Batch's 1 MB."""
        sim = simulation(simulators=400, env={f"V{i}": "x" * 1000 for i in range(11)})
        want = desired(sim, pools=AUTO)
        result = await asyncio.wait_for(run_pass(want, backend, clock_of(emulator)), 60)
        assert result.failures == ()
        observed = await backend.observe()
        assert len(observed.jobs["cartpole"].tasks) == 400
        outcomes = {o for (op, o) in backend.request_counts() if op.endswith("addtaskcollection")}
        assert "413" in outcomes  # the first attempts were too large, the halves went in


class TestRetryAfterAcrossChunks:
    async def test_sibling_chunks_wait_out_a_throttled_one(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        """10 collections through the reconcile layer's executor, 4 in flight; the first
        answer is 429 + Retry-After 30: the chunks not yet sent are not sent, and the
        execution reports the window."""
        await backend.execute(CreateJob("cartpole", "sims"))
        sim = simulation(simulators=1000)
        tasks = tuple(
            NewTask(f"cartpole-s{i}-r0123456789-a0", i, "0123456789", 0) for i in range(1000)
        )
        emulator.faults.inject(
            Fault.throttle(retry_after=30), operations=["Tasks_CreateTaskCollection"]
        )
        result = await Executor(backend, max_in_flight=4).run(
            [AddTasks("cartpole", template_of(sim), tasks)]
        )
        assert result.retry_after is not None
        assert result.retry_after > 25
        assert result.failures
        assert all(f.transient for f in result.failures)
        sent = emulator.counters.count("Tasks_CreateTaskCollection")
        assert sent <= 4  # at most the chunks already in flight when the 429 came back
        in_flight = len(emulator.faults.early_arrivals)  # sent before the 429 was known
        with pytest.raises(TransientBackendError):  # nothing else goes out in the window
            await backend.observe()
        assert emulator.counters.count("Tasks_CreateTaskCollection") == sent
        assert len(emulator.faults.early_arrivals) == in_flight


class TestOutputGone:
    """Batch keeps a task's files on the node that ran it: they go with the node, and after
    the task's retention time. Reading them then is one clear line, never a failed pass."""

    async def _failed(self, backend: AzureBackend, emulator: BatchEmulator) -> str:
        want = desired(simulation(simulators=1), pools=ONE_NODE)
        await converge(backend, want, emulator)
        (victim,) = (await backend.observe()).jobs["cartpole"].tasks
        emulator.finish_task("cartpole", victim.id, exit_code=1, stderr="boom\n")
        counts_catch_up(emulator)
        return victim.id

    async def test_files_go_with_their_node_and_the_tail_says_so(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        victim = await self._failed(backend, emulator)
        pools = emulator.state.pools
        pools.resize(emulator.state.world.pool("sims"), {"targetDedicatedNodes": 0})
        emulator.advance(emulator.config.allocation_delay)  # the node left the pool
        assert emulator.nodes("sims") == []
        with pytest.raises(OutputGoneError) as caught:
            await backend.read_output("cartpole", victim, OutputStream.STDERR)
        assert str(caught.value).startswith(f"read stderr.txt of {victim}: 404: not available")
        assert "\n" not in str(caught.value)
        observed = await backend.observe()  # the pass does not fail
        (task,) = [t for t in observed.jobs["cartpole"].tasks if t.id == victim]
        assert task.exit is not None
        assert task.exit.stderr_tail == GONE_NOTE

    async def test_files_go_after_the_retention_time(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        victim = await self._failed(backend, emulator)
        chunk = await backend.read_output("cartpole", victim, OutputStream.STDERR)
        assert chunk.data == b"boom\n"
        emulator.advance(7 * 24 * 3600)  # Batch's default retentionTime
        with pytest.raises(OutputGoneError) as caught:
            await backend.read_output("cartpole", victim, OutputStream.STDERR)
        assert str(caught.value).startswith(f"read stderr.txt of {victim}: 409: not available")


class TestStderrTails:
    async def test_the_newest_failure_shows_its_stderr_once_fetched(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        want = desired(simulation(simulators=2), pools=AUTO)
        await converge(backend, want, emulator)
        victim = (await backend.observe()).jobs["cartpole"].tasks[1]
        lines = "".join(f"line {i}\n" for i in range(30)) + "Traceback: boom\n"
        emulator.finish_task("cartpole", victim.id, exit_code=1, stderr=lines)
        counts_catch_up(emulator)
        result = await run_pass(want, backend, clock_of(emulator))
        row = result.status.simulations[0].simulators[1]
        assert row.last_exit is not None
        assert row.last_exit.stderr_tail.endswith("line 29\nTraceback: boom")
        assert row.last_exit.stderr_tail.count("\n") == 9  # the last 10 lines
        backend.requests.counts.clear()
        await backend.observe()
        files = [op for (op, _), n in backend.request_counts().items() if "/files/" in op]
        assert files == []  # a completed task's output does not change: fetched once

    async def test_a_task_that_never_ran_is_not_asked_again(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        emulator.break_image("broken")
        want = desired(simulation(simulators=1, image="cartpole:broken"), pools=AUTO)
        for _ in range(4):
            await run_pass(want, backend, clock_of(emulator))
            emulator.advance(5)
        await backend.observe()  # has seen the newest failure now
        backend.requests.counts.clear()
        await backend.observe()
        await backend.observe()
        asked = sum(n for (op, _), n in backend.request_counts().items() if "/files/" in op)
        assert asked == 0  # known to have no files: never asked again


class TestSecretsInTails:
    PEM = (
        "-----BEGIN TEST KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy\n-----END TEST KEY-----"
    )

    async def test_a_tail_is_masked_with_the_tasks_own_secrets_after_a_restart(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        """After a rotation and a restart the controller no longer knows the old value;
        the tail is masked against the secret values the task itself was created with."""
        base = simulation(simulators=1, secretEnv={"KEY": {"fromEnv": "SIM_KEY"}})
        sim = dataclasses.replace(base, secrets={"KEY": SecretStr(self.PEM)})
        await converge(backend, desired(sim, pools=AUTO), emulator)
        victim = (await backend.observe()).jobs["cartpole"].tasks[0]
        printed = "starting\n" + "x" * 9000 + "\n" + self.PEM + "\nexiting\n"  # cut mid-line
        emulator.finish_task("cartpole", victim.id, exit_code=1, stderr=printed)

        restarted = AzureBackend(settings_for(emulator))
        try:
            tasks = (await restarted.observe()).jobs["cartpole"].tasks
        finally:
            await restarted.close()
        (task,) = [t for t in tasks if t.id == victim.id]
        assert task.exit is not None
        tail = task.exit.stderr_tail
        assert tail.endswith("****\n****\n****\nexiting")
        for line in self.PEM.splitlines():
            assert line not in tail
        assert "xxxx" not in tail  # the window began inside that line: dropped, not kept


async def test_a_simulator_on_batch_is_told_what_a_local_one_is(
    backend: AzureBackend, emulator: BatchEmulator
) -> None:
    """SIMFLEET_SIMULATION, SIMFLEET_SLOT and SIMFLEET_TASK_ID, as the local backend sets
    them; the spec's own env wins, and a secretEnv name is never sent twice."""
    sim = dataclasses.replace(
        simulation(simulators=2, env={"PYTHONUNBUFFERED": "0", "MODE": "fast"}),
        secrets={},
    )
    await converge(backend, desired(sim, pools=AUTO), emulator)
    tasks = (await backend.observe()).jobs["cartpole"].tasks
    for task in tasks:
        body = emulator.task("cartpole", task.id)
        settings = [(e["name"], e["value"]) for e in body["environmentSettings"]]
        assert len({name for name, _ in settings}) == len(settings)  # each name once
        env = dict(settings)
        assert env["SIMFLEET_SIMULATION"] == "cartpole"
        assert env["SIMFLEET_TASK_ID"] == task.id
        assert env["SIMFLEET_SLOT"] == str(task.slot)
        assert env["MODE"] == "fast"
        assert env["PYTHONUNBUFFERED"] == "0"  # the spec's own value wins


async def test_a_hung_request_fails_within_the_read_timeout(emulator: BatchEmulator) -> None:
    """azure-core would wait 300 s for an answer; the backend gives up after its own
    timeout and says the service did not answer (transient: the next pass retries)."""
    emulator.faults.latency = 5.0
    hung = AzureBackend(settings_for(emulator), timeouts=(2.0, 0.3))
    try:
        # without the timeout the answer would come, late, and nothing would be raised
        with pytest.raises(UnreachableBackendError, match="no answer from the Batch endpoint"):
            await hung.observe()
    finally:
        await hung.close()
        emulator.faults.latency = 0.0


class TestSideReadsNeverFailAPass:
    async def test_a_connection_dropped_while_reading_a_tail_leaves_the_tail_for_later(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await converge(backend, desired(simulation(simulators=1), pools=AUTO), emulator)
        victim = (await backend.observe()).jobs["cartpole"].tasks[0]
        emulator.finish_task("cartpole", victim.id, exit_code=1, stderr="boom\n")
        counts_catch_up(emulator)
        # twice: aiohttp sends an idempotent request again once on a reused connection
        emulator.faults.inject(Fault.drop(), times=2, operations=["Tasks_GetTaskFileProperties"])
        first = (await backend.observe()).jobs["cartpole"].tasks  # no exception
        (task,) = [t for t in first if t.id == victim.id]
        assert task.exit is not None
        assert task.exit.stderr_tail == ""
        again = (await backend.observe()).jobs["cartpole"].tasks
        (task,) = [t for t in again if t.id == victim.id]
        assert task.exit is not None
        assert task.exit.stderr_tail == "boom"

    async def test_a_job_gone_between_the_listing_and_its_counts_is_gone(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await converge(backend, desired(simulation(simulators=1), pools=AUTO), emulator)
        emulator.faults.inject(
            Fault.status_code(404, "JobNotFound", "The specified job does not exist."),
            operations=["Jobs_GetJobTaskCounts"],
        )
        observed = await backend.observe()  # no exception
        assert "cartpole" not in observed.jobs
        assert "cartpole" in (await backend.observe()).jobs  # it was not really gone

    async def test_a_job_being_deleted_costs_no_request(
        self, backend: AzureBackend, emulator: BatchEmulator
    ) -> None:
        await converge(backend, desired(simulation(simulators=1), pools=AUTO), emulator)
        await backend.execute(DeleteJob("cartpole"))
        counted = emulator.counters.count("Jobs_GetJobTaskCounts")
        observed = await backend.observe()
        assert observed.jobs["cartpole"].state is JobState.DELETING
        assert emulator.counters.count("Jobs_GetJobTaskCounts") == counted


async def test_a_simulator_runs_as_the_pools_admin_auto_user(
    backend: AzureBackend, emulator: BatchEmulator
) -> None:
    """As root in its container, like under --runtime docker: Batch's default non-admin
    auto-user cannot write to a working directory the image made as root."""
    await converge(backend, desired(simulation(simulators=1), pools=AUTO), emulator)
    (task,) = (await backend.observe()).jobs["cartpole"].tasks
    body = emulator.task("cartpole", task.id)
    assert body["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}


async def test_simulators_waiting_for_an_allocating_pool_are_waiting_for_nodes(
    backend: AzureBackend, emulator: BatchEmulator
) -> None:
    """Issue 10, item 11: Batch's allocationStateTransitionTime reaches the planner, so a
    first deployment whose pool still allocates is Progressing (WaitingForNodes)."""
    want = desired(simulation(simulators=2), pools=AUTO)
    await run_pass(want, backend, clock_of(emulator))  # creates pool and job, adds tasks
    emulator.advance(2)  # allocation takes 5 s here
    result = await run_pass(want, backend, clock_of(emulator))
    pool = (await backend.observe()).pools["sims"]
    assert pool.allocation_changed_at is not None
    assert pool.allocation_changed_at <= clock_of(emulator)()
    (status,) = result.status.simulations
    progressing = next(c for c in status.conditions if c.type.value == "Progressing")
    assert (progressing.status, progressing.reason.value) == (True, "WaitingForNodes")
    assert "waiting for pool sims: allocating nodes, 0/1 usable" in progressing.message
