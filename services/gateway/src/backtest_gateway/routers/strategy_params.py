"""GET /strategy/{name}/params: a strategy's declared params (types, bounds, defaults) for forms."""

from __future__ import annotations

from backtest_core.strategy.builtins import BUILTINS
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from backtest_gateway.declared_params import declared_params
from backtest_gateway.deps import ReaderDep, StrategiesDep
from backtest_gateway.errors import ErrorBody
from backtest_gateway.routers.strategies import NamePath, OwnerQuery, _owner, visible_strategy
from backtest_gateway.schemas_strategy import BuiltinInfo, ParamInfo

router = APIRouter(
    prefix="/strategy",
    tags=["strategies"],
    responses={
        401: {"model": ErrorBody, "description": "missing, invalid or expired token"},
        404: {"model": ErrorBody, "description": "no such strategy"},
    },
)


class StrategyParams(BaseModel):
    """The params a strategy declares; `version` is None for a built-in."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    version: int | None
    params: list[ParamInfo]


@router.get("/{name}/params")
async def get_strategy_params(
    name: NamePath, principal: ReaderDep, store: StrategiesDep, owner: OwnerQuery = None
) -> StrategyParams:
    """Return a strategy's declared params: a built-in's from its class, an uploaded one's read from its
    source without running it (literal `Param(...)` declarations) with its stored defaults on top."""
    if name in BUILTINS:
        info = BuiltinInfo.from_class(name, BUILTINS[name])
        return StrategyParams(name=name, kind="builtin", version=None, params=info.params)
    record = await visible_strategy(store, principal, _owner(principal, owner), name)
    params = declared_params(record.source, record.class_name, record.params)
    return StrategyParams(name=name, kind="user", version=record.version, params=params)
