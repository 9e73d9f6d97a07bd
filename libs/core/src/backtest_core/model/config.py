"""The settings of one backtest: frozen, unknown fields rejected, every default documented."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from backtest_core.model.candles import INTERVAL_NS, SYMBOL_PATTERN
from backtest_core.model.strategy_package import package_problem

ParamValue = int | float | str | bool
# Parameter names are Python identifiers (they reach decide() as keyword arguments).
ParamName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
Params = dict[ParamName, ParamValue]


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must be timezone-aware (UTC), e.g. 2020-01-01T00:00:00Z")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class Frozen(BaseModel):
    """Base of every settings and message model: immutable, unknown fields and non-finite numbers rejected.

    Infinity and NaN have no JSON form (they travel as null), so a model refuses them where they enter.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class BuiltinStrategy(Frozen):
    """A strategy shipped with the engine, by its registry name (e.g. "sma_cross")."""

    builtin: str = Field(min_length=1, max_length=100)


class ModuleStrategy(Frozen):
    """A strategy class importable as `module:class` (must be installed where the engine runs)."""

    module: str = Field(min_length=1, max_length=200)
    class_name: str = Field(alias="class", min_length=1, max_length=100)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SourceStrategy(Frozen):
    """A strategy uploaded as Python source (one module, or a package: entry + `files`); sandbox only."""

    source: str = Field(min_length=1, max_length=200_000)
    class_name: str | None = Field(default=None, alias="class", max_length=100)
    name: str | None = Field(default=None, max_length=100, description="the uploaded strategy's name")
    version: int | None = Field(default=None, ge=1, description="the uploaded strategy's version")
    files: dict[str, str] = Field(
        default_factory=dict,
        description="a package's helper modules by path (helpers.py, lib/levels.py); `source` is its entry",
    )

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _package_within_limits(self) -> SourceStrategy:
        problem = package_problem(self.source, self.files)
        if problem is not None:
            raise ValueError(problem)
        return self


StrategySpec = str | BuiltinStrategy | ModuleStrategy | SourceStrategy


class FeeModel(Frozen):
    """Binance fees as a fraction of traded notional; market orders pay taker, resting limit orders maker.

    Defaults are Binance spot's base tier: 0.1% maker, 0.1% taker.
    """

    maker: float = Field(default=0.001, ge=0.0, lt=0.1)
    taker: float = Field(default=0.001, ge=0.0, lt=0.1)


class BacktestConfig(Frozen):
    """Everything that determines a backtest's result, apart from the candles themselves.

    Fill timing: "next_open" fills a signal of bar t at the open of bar t+1 (default, no look-ahead);
    "close" fills at the close of bar t. Same-bar conflict: when a bar touches both take-profit and
    stop-loss, "stop_first" (default, conservative) exits at the stop, "target_first" at the target.
    """

    strategy: StrategySpec
    params: Params = Field(default_factory=dict)
    symbols: list[str] = Field(min_length=1, max_length=1000)
    interval: str = "1d"
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    cash: float = Field(default=1_000_000.0, gt=0)
    fees: FeeModel = Field(default_factory=FeeModel)
    slippage_bps: float = Field(default=0.0, ge=0, le=1000, description="adverse price move per fill, bps")
    fill: Literal["next_open", "close"] = "next_open"
    size: float = Field(default=1.0, gt=0, le=1.0, description="fraction of equity per new position")
    allow_short: bool = False
    same_bar: Literal["stop_first", "target_first"] = "stop_first"
    max_holding_bars: int | None = Field(default=None, ge=1)
    tick_size: float | None = Field(default=None, gt=0, description="price rounding; None = no rounding")
    step_size: float | None = Field(default=None, gt=0, description="quantity rounding; None = fractional")
    parallel_symbols: int = Field(default=1, ge=1, le=64, description="threads generating proposals")

    def with_params(self, params: Params) -> BacktestConfig:
        """This config with `params` over its own (a sweep's trial of this base config), validated again."""
        return BacktestConfig.model_validate({**self.model_dump(), "params": {**self.params, **params}})

    @field_validator("symbols")
    @classmethod
    def _symbols_are_binance_names(cls, symbols: list[str]) -> list[str]:
        for symbol in symbols:
            if not SYMBOL_PATTERN.match(symbol):
                raise ValueError(f"symbol must be upper-case letters and digits like BTCUSDT, was {symbol!r}")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols must be unique, was {symbols}")
        return symbols

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, interval: str) -> str:
        if interval not in INTERVAL_NS:
            raise ValueError(f"interval must be one of {sorted(INTERVAL_NS)}, was {interval!r}")
        return interval

    @model_validator(mode="after")
    def _start_before_end(self) -> BacktestConfig:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"start must be < end, was start={self.start}, end={self.end}")
        return self
