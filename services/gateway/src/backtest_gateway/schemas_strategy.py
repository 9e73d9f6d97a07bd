"""The public shapes of strategies: built-ins with their parameters, users' uploaded strategies."""

from __future__ import annotations

import inspect
from datetime import datetime

from backtest_core.model.config import BacktestConfig, Params, ParamValue, StrategySpec
from backtest_core.strategy import BaseStrategy
from pydantic import BaseModel, ConfigDict, Field

from backtest_gateway.ports import StrategyRecord

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

EXAMPLE_SOURCE = '''from backtest_core.strategy import BaseStrategy, Param, Side, Signal


class CloseAboveOpen(BaseStrategy):
    """BUY when the bar closes above its open, SELL when below."""

    params = {"min_move": Param(0.0, "smallest close-open move, quote currency", minimum=0.0)}

    def get_required_lookback(self) -> int:
        return 1

    def decide(self, df, interval, **p):
        move = df.close[-1] - df.open[-1]
        if move > p["min_move"]:
            return Signal(Side.BUY)
        if move < -p["min_move"]:
            return Signal(Side.SELL)
        return Signal(Side.NO)
'''


class _Public(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParamInfo(_Public):
    """A declared parameter of a built-in: default, inclusive bounds (None = unbounded), meaning."""

    name: str
    default: ParamValue
    type: str
    minimum: float | None = None
    maximum: float | None = None
    doc: str


class BuiltinInfo(_Public):
    """A strategy shipped with the engine; submit it as `"strategy": "<name>"`."""

    name: str
    kind: str = "builtin"
    description: str
    params: list[ParamInfo]

    @classmethod
    def from_class(cls, name: str, strategy: type[BaseStrategy]) -> BuiltinInfo:
        """Describe a built-in from its class (docstring and declared params)."""
        params = [
            ParamInfo(
                name=key,
                default=p.default,
                type=type(p.default).__name__,
                minimum=p.minimum,
                maximum=p.maximum,
                doc=p.doc,
            )
            for key, p in (strategy.params or {}).items()
        ]
        doc = inspect.getdoc(strategy) or ""
        return cls(name=name, description=doc, params=params)


class StrategyCreate(_Input):
    """A strategy to upload: Python source defining one BaseStrategy subclass, and its default params."""

    name: str = Field(pattern=NAME_PATTERN, description="lower-case letters, digits, _; unique per user")
    source: str = Field(
        min_length=1,
        max_length=200_000,
        description="Python source (a package's entry module); never run here",
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "a package's helper modules by path (helpers.py, lib/__init__.py, lib/levels.py), imported "
            "by the entry module `source`; at most 20, lower-case names, checked like `source`"
        ),
    )
    class_name: str | None = Field(
        default=None, max_length=100, description="the strategy class when the source defines several"
    )
    params: Params = Field(default_factory=dict, description="defaults merged under a submit's")
    description: str = Field(default="", max_length=2_000)


class StrategyUpdate(_Input):
    """A new version of an uploaded strategy (the stored versions stay as they are, and runnable by pin)."""

    source: str = Field(min_length=1, max_length=200_000)
    files: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "a package's helper modules by path (helpers.py, lib/__init__.py, lib/levels.py), imported "
            "by the entry module `source`; at most 20, lower-case names, checked like `source`"
        ),
    )
    class_name: str | None = Field(default=None, max_length=100)
    params: Params = Field(default_factory=dict)
    description: str = Field(default="", max_length=2_000)
    expected_version: int | None = Field(
        default=None, ge=1, description="refuse the update (409) unless this is the stored version"
    )


class StrategyPublic(_Public):
    """An uploaded strategy; submit it as `"strategy": {"user": "<name>"}`."""

    name: str
    kind: str = "user"
    user_id: str
    class_name: str
    version: int
    params: Params
    description: str
    source: str
    files: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: StrategyRecord) -> StrategyPublic:
        """Project a stored strategy."""
        return cls.model_validate(record.model_dump())


class StrategyVersionInfo(_Public):
    """One stored version (without its source: `GET /strategy/{name}/versions/{version}` has it)."""

    version: int
    class_name: str
    params: Params
    description: str
    files: list[str] = Field(description="the helper modules' paths (empty for a single module)")
    created_at: datetime = Field(description="when this version was stored")

    @classmethod
    def from_record(cls, record: StrategyRecord) -> StrategyVersionInfo:
        """Describe one stored version."""
        return cls(
            version=record.version,
            class_name=record.class_name,
            params=record.params,
            description=record.description,
            files=sorted(record.files),
            created_at=record.updated_at,
        )


class StrategyVersionList(_Public):
    """Every stored version of one strategy, oldest first; `latest` is None once the strategy is deleted."""

    name: str
    user_id: str
    latest: int | None
    versions: list[StrategyVersionInfo]


class StrategyList(_Public):
    """Every built-in, and one page of the caller's uploaded strategies (admins: everyone's)."""

    builtins: list[BuiltinInfo]
    items: list[StrategyPublic]
    total: int = Field(ge=0)
    limit: int
    offset: int
    next_offset: int | None


class UserStrategyRef(_Input):
    """Your uploaded strategy by name; `version` pins one stored version (default: the latest)."""

    user: str = Field(pattern=NAME_PATTERN, description="the strategy's name")
    version: int | None = Field(default=None, ge=1)


class BacktestRequest(BacktestConfig):
    """A BacktestConfig whose strategy may also be `{"user": "<name>"}`: one of your uploaded strategies.

    The gateway replaces it by the stored source (`{"source", "class"}`), merges the stored default
    params under the given ones, and records the strategy's name and version on the task.
    """

    strategy: StrategySpec | UserStrategyRef  # type: ignore[assignment]  # widens the config's field on purpose
