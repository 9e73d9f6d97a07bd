"""Fair share of the runner slots: pure functions from (admission state, message) to an AdmissionPlan.

A job is admitted to the runners' work queue only while its owner has fewer than `per_user_in_flight`
jobs in flight and the platform fewer than `max_in_flight` (the total runner slots). The others wait,
oldest first per owner. When a slot frees, it goes to the waiting owner with the fewest jobs in flight;
ties go to the owner served least recently (an owner never served first, then by the age of its oldest
waiting job): round robin across owners, not FIFO across jobs.

A ticket names a unit of work by `key` (a task id today; a sweep's chunk can use the same admission)
and its `owner` (the user). An admitted ticket stays in flight until it ends (success, failure,
cancel, dead letter), retries included. `dispatched` turns True once its job was published, so a job
whose publish failed (or whose scheduler died) is published again by the next decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from backtest_core.model.config import Frozen
from pydantic import Field


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """How many jobs may be in flight at once: per owner and on the whole platform."""

    per_user_in_flight: int
    max_in_flight: int

    def __post_init__(self) -> None:
        if self.per_user_in_flight < 1 or self.max_in_flight < 1:
            raise ValueError(
                "per_user_in_flight and max_in_flight must be >= 1, "
                f"were {self.per_user_in_flight} and {self.max_in_flight}"
            )


class Ticket(Frozen):
    """One unit of work waiting for, or holding, a runner slot."""

    key: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    attempt: int = Field(default=1, ge=1)
    dispatched: bool = False


class AdmissionState(Frozen):
    """Tickets in flight and waiting (arrival order), and owners by last admission (oldest first)."""

    in_flight: tuple[Ticket, ...] = ()
    waiting: tuple[Ticket, ...] = ()
    recent: tuple[str, ...] = ()

    def find(self, key: str) -> Ticket | None:
        """Return the ticket with this key, in flight or waiting, or None."""
        return next((t for t in (*self.in_flight, *self.waiting) if t.key == key), None)

    def in_flight_of(self, owner: str) -> int:
        """Return how many of `owner`'s tickets hold a slot."""
        return sum(1 for t in self.in_flight if t.owner == owner)

    def queued_behind(self, key: str) -> int:
        """Return how many of the same owner's tickets are ahead of waiting ticket `key` (in flight too)."""
        ticket = next((t for t in self.waiting if t.key == key), None)
        if ticket is None:
            return 0
        earlier = self.waiting[: self.waiting.index(ticket)]
        return self.in_flight_of(ticket.owner) + sum(1 for t in earlier if t.owner == ticket.owner)


@dataclass(frozen=True, slots=True)
class AdmissionPlan:
    """The new state and the in-flight tickets whose jobs must be published now."""

    state: AdmissionState
    dispatch: tuple[Ticket, ...]


def _undispatched(state: AdmissionState) -> AdmissionPlan:
    return AdmissionPlan(state, tuple(t for t in state.in_flight if not t.dispatched))


def _next_owner(state: AdmissionState, limits: AdmissionLimits) -> str | None:
    """Return the waiting owner who gets the next free slot, or None if nobody may be admitted."""
    if len(state.in_flight) >= limits.max_in_flight:
        return None
    first_wait: dict[str, int] = {}
    for index, ticket in enumerate(state.waiting):
        first_wait.setdefault(ticket.owner, index)
    eligible = [o for o in first_wait if state.in_flight_of(o) < limits.per_user_in_flight]
    if not eligible:
        return None
    served = {owner: index for index, owner in enumerate(state.recent)}
    return min(eligible, key=lambda o: (state.in_flight_of(o), served.get(o, -1), first_wait[o]))


def _fill(state: AdmissionState, limits: AdmissionLimits) -> AdmissionState:
    """Admit waiting tickets while a slot and an eligible owner exist."""
    while (owner := _next_owner(state, limits)) is not None:
        ticket = next(t for t in state.waiting if t.owner == owner)
        state = AdmissionState(
            in_flight=(*state.in_flight, ticket),
            waiting=tuple(t for t in state.waiting if t is not ticket),
            recent=(*(o for o in state.recent if o != owner), owner),
        )
    return state


def _prune(state: AdmissionState) -> AdmissionState:
    """Forget owners that hold and wait for nothing (keeps the state small)."""
    active = {t.owner for t in (*state.in_flight, *state.waiting)}
    return state.model_copy(update={"recent": tuple(o for o in state.recent if o in active)})


def offer(
    state: AdmissionState, key: str, owner: str, attempt: int, limits: AdmissionLimits
) -> AdmissionPlan:
    """Queue a job (a new task, or the next attempt of one in flight) and admit whatever may go now.

    Offering a known key again changes nothing, except a higher `attempt` of a ticket in flight, whose
    job is published again (a retry keeps its slot).
    """
    known = state.find(key)
    if known is not None:
        if known in state.in_flight and attempt > known.attempt:
            again = known.model_copy(update={"attempt": attempt, "dispatched": False})
            in_flight = tuple(again if t is known else t for t in state.in_flight)
            state = state.model_copy(update={"in_flight": in_flight})
        return _undispatched(state)
    ticket = Ticket(key=key, owner=owner, attempt=attempt)
    return _undispatched(_fill(state.model_copy(update={"waiting": (*state.waiting, ticket)}), limits))


def end(state: AdmissionState, key: str, limits: AdmissionLimits) -> AdmissionPlan:
    """Drop a ticket whose task ended (or never needs to run) and give its slot to the next owner."""
    in_flight = tuple(t for t in state.in_flight if t.key != key)
    waiting = tuple(t for t in state.waiting if t.key != key)
    state = state.model_copy(update={"in_flight": in_flight, "waiting": waiting})
    return _undispatched(_prune(_fill(state, limits)))


def confirm(state: AdmissionState, key: str, attempt: int) -> AdmissionState:
    """Mark the in-flight ticket `key` dispatched once the job of `attempt` was published."""
    in_flight = tuple(
        t.model_copy(update={"dispatched": True}) if t.key == key and t.attempt == attempt else t
        for t in state.in_flight
    )
    return state.model_copy(update={"in_flight": in_flight})
