"""Parameter specs: lists, inclusive ranges, distributions, and the errors that name the spec."""

from __future__ import annotations

import random

import pytest
from backtest_research.space import ParamSpace, SpaceError, parse_param_spec


def test_a_range_includes_its_stop_when_the_steps_land_on_it() -> None:
    assert parse_param_spec("fast=5:50:5").values == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert parse_param_spec("fast=5:52:5").values == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert parse_param_spec("x=0.1:0.3:0.1").values == (0.1, 0.2, 0.3)


def test_a_list_keeps_numbers_and_words() -> None:
    assert parse_param_spec("slow=30,50,100").values == (30, 50, 100)
    assert parse_param_spec("mode=ema,sma").values == ("ema", "sma")


def test_the_grid_is_every_combination_the_last_parameter_fastest() -> None:
    space = ParamSpace.parse(["fast=5,10", "slow=30,50,100"])
    grid = list(space.grid())
    assert space.grid_size() == 6 == len(grid)
    assert grid[:4] == [
        {"fast": 5, "slow": 30},
        {"fast": 5, "slow": 50},
        {"fast": 5, "slow": 100},
        {"fast": 10, "slow": 30},
    ]


def test_random_draws_are_seeded_and_within_their_bounds() -> None:
    space = ParamSpace.parse(["fast=int:2:20", "ratio=float:0.1:0.9", "lr=log:0.001:1", "mode=cat:a,b"])
    first = space.sample(random.Random(7), 50)
    assert first == space.sample(random.Random(7), 50)
    assert all(2 <= d["fast"] <= 20 and isinstance(d["fast"], int) for d in first)
    assert all(0.1 <= d["ratio"] <= 0.9 and 0.001 <= d["lr"] <= 1 and d["mode"] in ("a", "b") for d in first)


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["fast"], "expected NAME=VALUES"),
        (["fast=5:1:1"], "stop >= start"),
        (["fast=1:5"], "start:stop:step"),
        (["lr=log:0:1"], "LOW > 0"),
        (["fast=1,2", "fast=3"], "fast given more than once"),
        ([], "at least one --grid"),
    ],
)
def test_bad_specs_are_refused_naming_what_was_wrong(specs: list[str], message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        ParamSpace.parse(specs)


def test_a_grid_over_a_distribution_is_refused() -> None:
    with pytest.raises(SpaceError, match="ratio is a distribution"):
        list(ParamSpace.parse(["ratio=float:0:1"]).grid())
