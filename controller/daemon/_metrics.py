"""Prometheus metrics of the daemon, on a registry of its own.

Gauges are set from each pass's status, so they always describe the last observation;
counters accumulate actions by kind and outcome. Labels are object names and action kinds
only — never values from a spec's environment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from controller.daemon._leadership import Leadership
from controller.planner import Action, NodeStates, PoolStatus, Status
from controller.reconcile import PassResult
from controller.spec import SpecError


class Metrics:
    """The daemon's metrics; ``render()`` gives the Prometheus text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.desired = Gauge(
            "simfleet_simulators_desired",
            "Simulators a simulation asks for.",
            ["simulation"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "simfleet_simulators_ready",
            "Simulators running and available.",
            ["simulation"],
            registry=self.registry,
        )
        self.up_to_date = Gauge(
            "simfleet_simulators_up_to_date",
            "Live simulators on the current template.",
            ["simulation"],
            registry=self.registry,
        )
        self.restarts = Gauge(
            "simfleet_simulator_restarts",
            "Restarts of the current simulators, summed.",
            ["simulation"],
            registry=self.registry,
        )
        self.spec_errors = Gauge(
            "simfleet_spec_errors", "Spec errors in force.", registry=self.registry
        )
        self.pass_seconds = Histogram(
            "simfleet_reconcile_duration_seconds",
            "Duration of one reconcile pass.",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.requests = Counter(
            "simfleet_backend_requests",
            "Backend operations by kind and outcome.",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.http = Counter(
            "simfleet_backend_http_requests",
            "HTTP requests the backend sent (Azure Batch), by operation and status code.",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.failed_passes = Gauge(
            "simfleet_consecutive_failed_passes",
            "Passes in a row that raised (observation refused, specs unreadable, a bug); "
            "0 once a pass runs through.",
            registry=self.registry,
        )
        self.specs_missing = Gauge(
            "simfleet_specs_directory_missing",
            "1 while the specs directory does not exist (or is not a directory).",
            registry=self.registry,
        )
        self.leader = Gauge(
            "simfleet_leader",
            "1 while this controller leads its fleet (holds the lease), 0 as a standby.",
            ["fleet"],
            registry=self.registry,
        )
        self.lease_transitions = Gauge(
            "simfleet_lease_transitions",
            "How many times the fleet's lease changed hands, as the lease records it.",
            ["fleet"],
            registry=self.registry,
        )
        self.pool_nodes = Gauge(
            "simfleet_pool_nodes",
            "Nodes of a pool by state: usable (idle or running), starting, unusable, "
            "starttaskfailed, preempted, leaving, other (offline, unknown).",
            ["pool", "state"],
            registry=self.registry,
        )
        self._http_seen: dict[tuple[str, str], int] = {}
        self._known: set[str] = set()
        self._counted_pools: set[str] = set()

    def observe_pass(self, result: PassResult, errors: Sequence[SpecError]) -> None:
        """Record one pass."""
        self.pass_seconds.observe(result.duration.total_seconds())
        self.spec_errors.set(len(errors))
        self.requests.labels("observe", "ok").inc()
        for action in result.executed:
            self.requests.labels(_operation(action), "ok").inc()
        for failure in result.failures:
            self.requests.labels(_operation(failure.action), failure.code or "error").inc()
        self._set_status(result.status)

    def observe_http(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Add what a backend's own request counter grew by since the last call."""
        for key, total in counts.items():
            grown = total - self._http_seen.get(key, 0)
            if grown > 0:
                self.http.labels(*key).inc(grown)
            self._http_seen[key] = total

    def observe_health(self, failed_passes: int, specs_missing: bool) -> None:
        """Record how the loop fares after a pass, failed or not."""
        self.failed_passes.set(failed_passes)
        self.specs_missing.set(1 if specs_missing else 0)

    def observe_leadership(self, leadership: Leadership) -> None:
        """Whether this controller leads, and the lease's hand-overs so far."""
        fleet = leadership.lease.fleet
        self.leader.labels(fleet).set(1 if leadership.may_write() else 0)
        if leadership.record is not None:
            self.lease_transitions.labels(fleet).set(leadership.record.transitions)

    def count_failed_observe(self, code: str | None) -> None:
        """Record an observation the backend refused."""
        self.requests.labels("observe", code or "error").inc()

    def _set_status(self, status: Status) -> None:
        names = {s.name for s in status.simulations}
        for gone in self._known - names:
            for gauge in (self.desired, self.ready, self.up_to_date, self.restarts):
                gauge.remove(gone)
        self._known = names
        for sim in status.simulations:
            self.desired.labels(sim.name).set(sim.desired)
            self.ready.labels(sim.name).set(sim.ready)
            self.up_to_date.labels(sim.name).set(sim.up_to_date)
            self.restarts.labels(sim.name).set(sim.restarts)
        self._set_pools(status.pools)

    def _set_pools(self, pools: Sequence[PoolStatus]) -> None:
        """Node counts of every pool the backend counted; a pool no longer counted
        (deleted, or not counted this pass) loses its series rather than keep stale ones."""
        counted = {p.name: p.nodes for p in pools if p.nodes is not None}
        for gone in self._counted_pools - set(counted):
            for state in POOL_NODE_STATES:
                self.pool_nodes.remove(gone, state)
        self._counted_pools = set(counted)
        for name, nodes in counted.items():
            for state, count in node_state_counts(nodes).items():
                self.pool_nodes.labels(name, state).set(count)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


#: The ``state`` label values of ``simfleet_pool_nodes``, Batch's own names where one fits.
POOL_NODE_STATES = (
    "usable",
    "starting",
    "unusable",
    "starttaskfailed",
    "preempted",
    "leaving",
    "other",
)


def node_state_counts(nodes: NodeStates) -> dict[str, int]:
    """A pool's node counts by the ``state`` label values of ``simfleet_pool_nodes``."""
    values = (
        nodes.usable,
        nodes.starting,
        nodes.unusable,
        nodes.start_task_failed,
        nodes.preempted,
        nodes.leaving,
        nodes.other,
    )
    return dict(zip(POOL_NODE_STATES, values, strict=True))


def _operation(action: Action) -> str:
    name = type(action).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
