"""HeavyTurns: one user's heavy answers take turns; other users never wait for them."""

from __future__ import annotations

import asyncio

import pytest
from backtest_gateway.heavy_turns import HeavyTurns


def test_a_users_second_answer_waits_for_the_first_and_others_do_not() -> None:
    turns = HeavyTurns(per_user=1)
    order: list[str] = []

    async def answer(user: str, name: str, release: asyncio.Event | None) -> None:
        async with turns.turn(user):
            order.append(f"{name} in")
            if release is not None:
                await release.wait()
            order.append(f"{name} out")

    async def scenario() -> None:
        release = asyncio.Event()
        first = asyncio.create_task(answer("heavy", "heavy-1", release))
        await asyncio.sleep(0)
        second = asyncio.create_task(answer("heavy", "heavy-2", None))
        other = asyncio.create_task(answer("other", "other", None))
        await asyncio.sleep(0.01)
        assert order == ["heavy-1 in", "other in", "other out"]
        assert turns.in_use("heavy") == 2
        release.set()
        await asyncio.gather(first, second, other)

    asyncio.run(scenario())
    assert order[3:] == ["heavy-1 out", "heavy-2 in", "heavy-2 out"]
    assert turns.in_use("heavy") == 0 and turns.in_use("other") == 0


def test_a_cancelled_waiter_gives_its_place_back() -> None:
    turns = HeavyTurns(per_user=1)

    async def scenario() -> None:
        holding = asyncio.Event()
        release = asyncio.Event()

        async def hold() -> None:
            async with turns.turn("u"):
                holding.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await holding.wait()
        waiter = asyncio.create_task(hold())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert turns.in_use("u") == 1
        release.set()
        await holder

    asyncio.run(scenario())
    assert turns.in_use("u") == 0


def test_per_user_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="per_user must be at least 1, got 0"):
        HeavyTurns(per_user=0)
