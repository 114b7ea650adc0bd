"""A fleet's lease kept in Batch itself: the metadata of a job that never runs a task.

The job ``simfleet-lease-<fleet>`` names a pool that never exists (Batch accepts such a
job and simply runs nothing), carries ``simfleet-lease=<fleet>`` and the record of
:mod:`controller.backends._lease` in its metadata, and is written only with ``If-Match``
on the ETag last read: of two candidates writing after the same read, Batch lets one
through and answers the other 412 ``ConditionNotMet``; of two creating it, the second
gets 409 ``JobExists``. Either way the loser has lost the round.

A holder renews with one PATCH on the ETag its last write returned (no read); only when
that fails, or when its fence has closed, does it read again. A candidate reads once per
round. So a fleet's lease costs one request per ``retry_period`` per controller. It
shares the backend's ``Retry-After`` window (:mod:`._throttle`): a throttled account
gets no renewal inside it either, even if the lease then runs out.

The lease job is not ``simfleet-managed``: no fleet ever prunes it, and observation
reports it as another's object, so a simulation of the same name is a conflict. One
active job per fleet counts against the account's job quota.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.batch import models as m
from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError

from controller.backends._errors import BackendError
from controller.backends._lease import LeaseRecord, LeaseState, LeaseTimings, claim
from controller.backends.azure._client import AzureSettings, RequestCounter, make_client
from controller.backends.azure._errors import code_of
from controller.backends.azure._throttle import Throttle

#: Metadata that marks the lease job, with the fleet's name as its value.
LEASE = "simfleet-lease"
#: The pool the lease job names; it is never created.
NO_POOL = "simfleet-lease-no-pool"


def lease_job_id(fleet: str) -> str:
    """The id of the job that holds ``fleet``'s lease."""
    return f"{LEASE}-{fleet}"


class _Etag:
    """A response hook that keeps the answer's ``ETag`` (the SDK returns only the body)."""

    value: str | None = None

    def __call__(self, _response: Any, body: Any, headers: dict[str, Any]) -> Any:
        self.value = headers.get("ETag")
        return body


class AzureLease:
    """One controller's part in a fleet's lease; satisfies ``controller.backends.Lease``."""

    def __init__(
        self,
        settings: AzureSettings,
        *,
        fleet: str,
        identity: str,
        timings: LeaseTimings,
        counter: RequestCounter | None = None,
        credential: Any = None,
        connection_verify: str | bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Prepare a client of its own (never fenced); nothing is sent before a round.

        Args:
            settings / credential / connection_verify: as for the backend.
            fleet / identity: whose lease, and who takes part.
            timings: lease duration, renew deadline and retry period.
            counter: where its requests are counted (a backend made with this lease
                counts into the same one, for ``/metrics``).
            monotonic / wall: the clocks deciding (monotonic) and shown (wall).
        """
        self.fleet = fleet
        self.identity = identity
        self.timings = timings
        self.requests = counter or RequestCounter()
        #: shared with the backend made beside it: a Retry-After stops both
        self.throttle = Throttle(monotonic)
        self._client, self._credential = make_client(
            settings,
            self.requests,
            credential=credential,
            connection_verify=connection_verify,
            identity=identity,
        )
        self._job = lease_job_id(fleet)
        self._monotonic = monotonic
        self._wall = wall
        self._etag: str | None = None  # of the version this controller last wrote
        self._seen: tuple[str | None, float] = (None, 0.0)  # (etag, monotonic first seen)
        self._renewed_at: float | None = None  # monotonic send time of the last renewal
        self._writes_from = 0.0  # monotonic: a forced takeover writes only after this
        self._record: LeaseRecord | None = None

    # ------------------------------------------------------------------------- the fence

    def valid(self) -> bool:
        """Whether this controller may write: it renewed within the renew deadline, and a
        forced takeover has waited the old holder's deadline out."""
        if self._renewed_at is None:
            return False
        now = self._monotonic()
        return self._writes_from <= now < self._renewed_at + self.timings.renew_deadline

    def expires_in(self) -> float | None:
        """Until the record last read has stayed unchanged for its duration."""
        record = self._record
        if record is None or not record.holder or record.holder == self.identity:
            return None
        return self._seen[1] + record.duration - self._monotonic()

    # ------------------------------------------------------------------------ a round

    async def round(self, *, report: tuple[str, str] = ("", ""), force: bool = False) -> LeaseState:
        """Renew (one PATCH) or, failing that, read and try to acquire. A holder whose
        fence has closed (paused, or cut off, past its renew deadline) reads first: the
        lease may have changed hands, and it writes nothing on a guess."""
        self.throttle.hold()
        if self._etag is not None and self._record is not None and self.valid():
            renewed = await self._write(self._record, self._etag, report, force=False)
            if renewed is not None:
                return renewed
        record, etag = await self._read()
        if etag != self._seen[0]:
            self._seen = (etag, self._monotonic())
        decided = claim(
            record,
            me=self.identity,
            unchanged_for=self._monotonic() - self._seen[1],
            now=self._wall(),
            timings=self.timings,
            report=report,
            force=force,
        )
        if decided is None:
            self._lost(record)
            return LeaseState(False, record)
        sent_at = self._monotonic()
        if etag is None:
            won = await self._create(decided.record)
        else:
            won = await self._patch(decided.record, etag)
        if not won:
            self._lost(record)
            return LeaseState(False, record)
        self._renewed(decided.record, sent_at)
        if decided.forced:
            self._writes_from = sent_at + self.timings.renew_deadline
        return LeaseState(True, decided.record)

    async def _write(
        self, current: LeaseRecord, etag: str, report: tuple[str, str], *, force: bool
    ) -> LeaseState | None:
        """The holder's renewal on its own last version; None when it must read again."""
        decided = claim(
            current,
            me=self.identity,
            unchanged_for=0.0,
            now=self._wall(),
            timings=self.timings,
            report=report,
            force=force,
        )
        assert decided is not None, "a record this controller wrote is its own to renew"
        sent_at = self._monotonic()
        if not await self._patch(decided.record, etag):
            self._etag = None
            return None
        self._renewed(decided.record, sent_at)
        return LeaseState(True, decided.record)

    def _renewed(self, record: LeaseRecord, sent_at: float) -> None:
        self._record = record
        self._renewed_at = sent_at

    def _lost(self, record: LeaseRecord | None) -> None:
        self._record = record
        self._etag = None
        self._renewed_at = None

    async def release(self) -> None:
        """Write an empty holder on the version this controller holds (nothing if it
        holds none); the next candidate's round takes it at once."""
        if self._etag is None or self._record is None:
            return
        released = LeaseRecord(
            "",
            self._record.acquired,
            self._wall(),
            self._record.duration,
            self._record.transitions,
        )
        try:
            await self._patch(released, self._etag)
        finally:
            self._lost(released)

    async def close(self) -> None:
        """Close the client (and a credential made for it)."""
        await self._client.close()
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()

    # ---------------------------------------------------------------------- requests

    def _metadata(self, record: LeaseRecord) -> list[m.BatchMetadataItem]:
        items = {LEASE: self.fleet, **record.as_items()}
        return [m.BatchMetadataItem(name=k, value=v) for k, v in items.items()]

    async def _read(self) -> tuple[LeaseRecord | None, str | None]:
        """The record and its ETag; (None, None) when the lease job does not exist."""
        try:
            etag = _Etag()
            job = await self._client.get_job(self._job, select=["id", "metadata"], cls=etag)
        except HttpResponseError as exc:
            if code_of(exc) == "JobNotFound":
                return None, None
            raise self._failed(exc, "read") from exc
        except AzureError as exc:  # no answer at all
            raise self._failed(exc, "read") from exc
        items = {item.name: item.value for item in job.metadata or ()}
        return LeaseRecord.from_items(items), etag.value

    async def _create(self, record: LeaseRecord) -> bool:
        """Create the lease job holding ``record``; False when another controller did."""
        body = m.BatchJobCreateOptions(
            id=self._job,
            pool_info=m.BatchPoolInfo(pool_id=NO_POOL),
            metadata=self._metadata(record),
        )
        try:
            etag = _Etag()
            await self._client.create_job(body, cls=etag)
        except HttpResponseError as exc:
            if code_of(exc) == "JobExists":
                return False
            raise self._failed(exc, "create") from exc
        except AzureError as exc:
            raise self._failed(exc, "create") from exc
        self._etag = etag.value
        return True

    async def _patch(self, record: LeaseRecord, etag: str) -> bool:
        """Write ``record`` if the job is still at ``etag``; False when it is not."""
        try:
            etag_of = _Etag()
            await self._client.update_job(
                self._job,
                m.BatchJobUpdateOptions(metadata=self._metadata(record)),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
                cls=etag_of,
            )
        except HttpResponseError as exc:
            # With If-Match the SDK raises ResourceModifiedError for *every* error status:
            # only the status tells a lost race (412) or a vanished job (404) from a 503.
            if exc.status_code in (404, 412):
                return False
            raise self._failed(exc, "write") from exc
        except AzureError as exc:
            raise self._failed(exc, "write") from exc
        self._etag = etag_of.value
        return True

    def _failed(self, exc: AzureError, doing: str) -> BackendError:
        return self.throttle.classified(exc, f"{doing} the lease of fleet {self.fleet}")
