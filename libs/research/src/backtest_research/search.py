"""A sweep's search as one model: the space, the method, the objective. The CLI builds it from its options,
the gateway validates it at `POST /sweep/submit`, the sweeper plans trials from it; one definition.
"""

from __future__ import annotations

from typing import Literal, Self

from backtest_core.model.config import Frozen
from pydantic import Field, model_validator

from backtest_research.overfitting import PBO_SPLITS_DEFAULT
from backtest_research.space import ParamSpace, SpaceError, Value
from backtest_research.sweep import Objective, plan_trials

SearchMethod = Literal["grid", "random", "tpe"]


class SweepSearch(Frozen):
    """What a sweep searches and how it ranks: the `--grid` specs, method, trials, seed and objective."""

    space: list[str] = Field(
        min_length=1, max_length=20, description="NAME=VALUES specs, e.g. fast=5:50:5 or slow=30,50,100"
    )
    method: SearchMethod = "grid"
    trials: int | None = Field(default=None, ge=1, description="trials of a random or TPE search")
    seed: int = Field(default=0, ge=0, description="seed of a random or TPE search")
    objective: str = Field(default="sharpe", max_length=60, description="METRIC[:max|min]")
    min_trades: int = Field(default=0, ge=0, description="trades a trial needs to be best")
    pbo_splits: int = Field(default=PBO_SPLITS_DEFAULT, ge=2, le=32, description="CSCV blocks, even")

    @model_validator(mode="after")
    def _readable(self) -> Self:
        space = self.param_space()  # SpaceError is a ValueError: pydantic reports it with the field
        self.ranking()
        if self.pbo_splits % 2:
            raise ValueError(f"pbo_splits: an even number, was {self.pbo_splits}")
        if self.method == "grid":
            space.grid_size() or next(space.grid(), None)  # raises for a distribution in a grid
        elif self.trials is None:
            raise SpaceError(f"{self.method} search needs trials (N >= 1)")
        return self

    def param_space(self) -> ParamSpace:
        """The parsed space."""
        return ParamSpace.parse(self.space)

    def ranking(self) -> Objective:
        """The parsed objective with its minimum trade count."""
        return Objective.parse(self.objective, self.min_trades)

    def size(self) -> int:
        """How many trials the search runs: the grid's combinations, or `trials`."""
        return self.param_space().grid_size() if self.method == "grid" else self.trials or 0

    def planned(self) -> list[dict[str, Value]]:
        """Every trial's params for grid and random search, in id order (TPE asks as it goes: empty)."""
        if self.method == "tpe":
            return []
        return plan_trials(self.param_space(), self.method, self.trials, self.seed)
