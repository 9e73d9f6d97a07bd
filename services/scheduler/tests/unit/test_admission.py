"""Fair share of the runner slots: caps per user and platform, round robin across users."""

from __future__ import annotations

import pytest
from backtest_scheduler.admission import AdmissionLimits, AdmissionState, confirm, end, offer


def submit_all(
    state: AdmissionState, keys: list[tuple[str, str]], limits: AdmissionLimits
) -> tuple[AdmissionState, list[str]]:
    """Offer (key, owner) pairs in order; return the state and the keys admitted, in admission order."""
    admitted: list[str] = []
    for key, owner in keys:
        plan = offer(state, key, owner, 1, limits)
        state = plan.state
        for ticket in plan.dispatch:
            if ticket.key not in admitted:
                admitted.append(ticket.key)
            state = confirm(state, ticket.key, ticket.attempt)
    return state, admitted


def run_to_completion(state: AdmissionState, limits: AdmissionLimits, admitted: list[str]) -> list[str]:
    """End the oldest in-flight job until nothing is left; return every key in admission order."""
    order = list(admitted)
    while state.in_flight:
        plan = end(state, state.in_flight[0].key, limits)
        state = plan.state
        for ticket in plan.dispatch:
            order.append(ticket.key)
            state = confirm(state, ticket.key, ticket.attempt)
    assert state == AdmissionState()  # nothing waits, nothing is held, no owner remembered
    return order


A6_B1 = [(f"a{i}", "alice") for i in range(1, 7)] + [("b1", "bob")]


def test_with_two_slots_and_two_per_user_bob_is_admitted_third_not_after_alices_sixth() -> None:
    limits = AdmissionLimits(per_user_in_flight=2, max_in_flight=2)

    state, admitted = submit_all(AdmissionState(), A6_B1, limits)

    # a1, a2 take both slots; a3..a6 and b1 wait. a1 ends: alice holds 1, bob 0 -> bob goes first.
    assert admitted == ["a1", "a2"]
    assert [t.key for t in state.waiting] == ["a3", "a4", "a5", "a6", "b1"]
    order = run_to_completion(state, limits, admitted)
    assert order == ["a1", "a2", "b1", "a3", "a4", "a5", "a6"]


def test_with_two_slots_and_one_per_user_bob_is_admitted_second_at_once() -> None:
    limits = AdmissionLimits(per_user_in_flight=1, max_in_flight=2)

    state, admitted = submit_all(AdmissionState(), A6_B1, limits)

    # alice may hold one slot: a1 runs, a2..a6 wait; bob's b1 takes the second slot on arrival.
    assert admitted == ["a1", "b1"]
    assert len(state.in_flight) == 2 and state.in_flight_of("alice") == 1
    assert run_to_completion(state, limits, admitted) == ["a1", "b1", "a2", "a3", "a4", "a5", "a6"]


def test_three_users_with_one_slot_take_turns_in_arrival_order() -> None:
    limits = AdmissionLimits(per_user_in_flight=1, max_in_flight=1)
    jobs = [(f"{user[0]}{i}", user) for user in ("alice", "bob", "carol") for i in (1, 2, 3)]

    state, admitted = submit_all(AdmissionState(), jobs, limits)

    assert admitted == ["a1"]
    order = run_to_completion(state, limits, admitted)
    assert order == ["a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3"]


def test_waiting_jobs_report_how_many_of_their_owners_jobs_are_ahead() -> None:
    limits = AdmissionLimits(per_user_in_flight=2, max_in_flight=2)

    state, _ = submit_all(AdmissionState(), A6_B1, limits)

    # a3 waits behind a1, a2 (in flight); a6 behind a1..a5; bob's b1 behind none of his own.
    assert [state.queued_behind(k) for k in ("a3", "a6", "b1")] == [2, 5, 0]


def test_ending_a_waiting_job_drops_it_without_admitting_it() -> None:
    limits = AdmissionLimits(per_user_in_flight=1, max_in_flight=1)
    state, _ = submit_all(AdmissionState(), [("a1", "alice"), ("a2", "alice"), ("a3", "alice")], limits)

    cancelled = end(state, "a2", limits)

    assert cancelled.dispatch == ()
    assert [t.key for t in cancelled.state.in_flight] == ["a1"]
    assert [t.key for t in cancelled.state.waiting] == ["a3"]
    assert run_to_completion(cancelled.state, limits, ["a1"]) == ["a1", "a3"]


def test_a_retry_keeps_its_slot_and_its_next_attempt_is_dispatched_again() -> None:
    limits = AdmissionLimits(per_user_in_flight=1, max_in_flight=1)
    state, _ = submit_all(AdmissionState(), [("a1", "alice"), ("b1", "bob")], limits)

    retried = offer(state, "a1", "alice", 2, limits)

    [ticket] = retried.dispatch
    assert (ticket.key, ticket.attempt, ticket.dispatched) == ("a1", 2, False)
    assert [t.key for t in retried.state.waiting] == ["b1"]


def test_offering_a_known_job_again_admits_nothing_new() -> None:
    limits = AdmissionLimits(per_user_in_flight=1, max_in_flight=1)
    state, _ = submit_all(AdmissionState(), [("a1", "alice"), ("a2", "alice")], limits)

    again = offer(offer(state, "a1", "alice", 1, limits).state, "a2", "alice", 1, limits)

    assert again.state == state and again.dispatch == ()


def test_a_job_whose_publish_was_not_confirmed_is_dispatched_by_the_next_decision() -> None:
    limits = AdmissionLimits(per_user_in_flight=2, max_in_flight=2)
    first = offer(AdmissionState(), "a1", "alice", 1, limits)  # published? never confirmed

    second = offer(first.state, "b1", "bob", 1, limits)

    assert [t.key for t in second.dispatch] == ["a1", "b1"]


def test_limits_below_one_are_rejected_with_both_values() -> None:
    with pytest.raises(ValueError, match="must be >= 1, were 0 and 4"):
        AdmissionLimits(per_user_in_flight=0, max_in_flight=4)
