"""Turn a submitted BacktestRequest into the BacktestConfig that is queued (resolving uploaded strategies)."""

from __future__ import annotations

from backtest_core.errors import ConfigError, StrategyLoadError
from backtest_core.model.config import BacktestConfig, BuiltinStrategy, SourceStrategy
from backtest_core.strategy.loader import load_strategy

from backtest_gateway.errors import NotFound, StrategyRejected
from backtest_gateway.ports import StrategyRef, StrategyStore
from backtest_gateway.schemas_strategy import BacktestRequest, UserStrategyRef
from backtest_gateway.strategy_check import strategy_class_name


class UploadedStrategyNotFound(NotFound):
    """The submission names an uploaded strategy the caller does not have."""

    code = "strategy_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"you have no uploaded strategy named {name!r}", field="strategy.user")


def check_strategy(config: BacktestConfig, *, source_max_bytes: int) -> None:
    """Refuse at submit what the sandbox would refuse: raise StrategyRejected naming what was wrong.

    Built-ins are loaded with their params (engine code only, never the user's); source is checked
    statically (size, syntax, a strategy class) and never executed here. A `module`/`class` strategy
    can only be checked inside the sandbox image, where it must be installed.
    """
    spec = config.strategy
    if isinstance(spec, str | BuiltinStrategy):
        try:
            load_strategy(spec, config.params)
        except StrategyLoadError as error:
            raise StrategyRejected(str(error), field="strategy") from error
        except ConfigError as error:
            raise StrategyRejected(str(error), field="params") from error
    elif isinstance(spec, SourceStrategy):
        strategy_class_name(
            spec.source, max_bytes=source_max_bytes, class_name=spec.class_name, files=spec.files
        )


async def resolve_config(
    request: BacktestRequest, user_id: str, strategies: StrategyStore
) -> tuple[BacktestConfig, StrategyRef | None]:
    """Return the config to queue and, for `{"user": name}`, which uploaded strategy version it holds.

    `version` pins one stored version (default: the latest). The stored source, helper files, class,
    name and version go into a `SourceStrategy`; stored default params are overridden by the request's.
    """
    fields = {name: getattr(request, name) for name in BacktestConfig.model_fields}
    spec = request.strategy
    if not isinstance(spec, UserStrategyRef):
        return BacktestConfig.model_validate(fields), None
    stored = await strategies.get(user_id, spec.user)
    if stored is None:
        raise UploadedStrategyNotFound(spec.user)
    if spec.version is not None and spec.version != stored.version:
        pinned = await strategies.get_version(user_id, spec.user, spec.version)
        if pinned is None:
            known = [v.version for v in await strategies.versions(user_id, spec.user)]
            raise NotFound(
                f"strategy {spec.user!r} has no version {spec.version}; its versions are {known}",
                field="strategy.version",
            )
        stored = pinned
    ref = StrategyRef(owner=user_id, name=stored.name, version=stored.version)
    fields["strategy"] = SourceStrategy(
        source=stored.source,
        files=stored.files,
        class_name=stored.class_name,
        name=stored.name,
        version=stored.version,
    )
    fields["params"] = {**stored.params, **request.params}
    return BacktestConfig.model_validate(fields), ref
