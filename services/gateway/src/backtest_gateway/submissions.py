"""Turn a submitted BacktestRequest into the BacktestConfig that is queued (resolving uploaded strategies)."""

from __future__ import annotations

from backtest_core.config import BacktestConfig, SourceStrategy

from backtest_gateway.errors import Conflict, NotFound
from backtest_gateway.ports import StrategyRef, StrategyStore
from backtest_gateway.schemas_strategy import BacktestRequest, UserStrategyRef


class UploadedStrategyNotFound(NotFound):
    """The submission names an uploaded strategy the caller does not have."""

    code = "strategy_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"you have no uploaded strategy named {name!r}", field="strategy.user")


async def resolve_config(
    request: BacktestRequest, user_id: str, strategies: StrategyStore
) -> tuple[BacktestConfig, StrategyRef | None]:
    """Return the config to queue and, for `{"user": name}`, which uploaded strategy version it holds.

    The stored source, class, name and version go into a `SourceStrategy`; stored default params are
    overridden by the request's.
    """
    fields = {name: getattr(request, name) for name in BacktestConfig.model_fields}
    spec = request.strategy
    if not isinstance(spec, UserStrategyRef):
        return BacktestConfig.model_validate(fields), None
    stored = await strategies.get(user_id, spec.user)
    if stored is None:
        raise UploadedStrategyNotFound(spec.user)
    if spec.version is not None and spec.version != stored.version:
        raise Conflict(
            f"strategy.version must be the stored version {stored.version} of {spec.user!r}, "
            f"was {spec.version}",
            field="strategy.version",
        )
    ref = StrategyRef(owner=user_id, name=stored.name, version=stored.version)
    fields["strategy"] = SourceStrategy(
        source=stored.source, class_name=stored.class_name, name=stored.name, version=stored.version
    )
    fields["params"] = {**stored.params, **request.params}
    return BacktestConfig.model_validate(fields), ref
