"""The strategy resource: built-ins with their params, and users' uploaded strategies (never run here)."""

from __future__ import annotations

from typing import Annotated, Any

from backtest_core.contracts import utc_now
from backtest_core.strategy.builtins import BUILTINS
from fastapi import APIRouter, Body, Path, Query, Response, status

from backtest_gateway.auth import Principal, Role
from backtest_gateway.deps import ReaderDep, SettingsDep, StrategiesDep
from backtest_gateway.errors import Conflict, ErrorBody, NotFound
from backtest_gateway.ports import StrategyRecord, StrategyStore
from backtest_gateway.schemas_strategy import (
    EXAMPLE_SOURCE,
    NAME_PATTERN,
    BuiltinInfo,
    StrategyCreate,
    StrategyList,
    StrategyPublic,
    StrategyUpdate,
    StrategyVersionInfo,
    StrategyVersionList,
)
from backtest_gateway.strategy_check import strategy_class_name

router = APIRouter(
    prefix="/strategy",
    tags=["strategies"],
    responses={
        401: {"model": ErrorBody, "description": "missing, invalid or expired token"},
        422: {"model": ErrorBody, "description": "invalid request; `field` names the offending field"},
        429: {"model": ErrorBody, "description": "rate limited; see Retry-After"},
    },
)

NamePath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64, description="the strategy's name")]
VersionPath = Annotated[int, Path(ge=1, le=1_000_000, description="a stored version, from 1")]
OwnerQuery = Annotated[
    str | None, Query(max_length=200, description="admins only: another user's strategy (ignored otherwise)")
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "no such strategy"}}
_WRITE: dict[int | str, dict[str, Any]] = {403: {"model": ErrorBody, "description": "role may not write"}}
RESERVED = frozenset({"list", "create"})
CREATE_EXAMPLE = {"name": "close_above_open", "source": EXAMPLE_SOURCE, "params": {"min_move": 5.0}}


class StrategyNotFound(NotFound):
    """No such strategy for this caller (foreign strategies look exactly like missing ones)."""

    code = "strategy_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"no strategy named {name!r}", field="name")


def _owner(principal: Principal, owner: str | None) -> str:
    return owner if principal.is_admin and owner else principal.user_id


async def visible_strategy(
    store: StrategyStore, principal: Principal, owner: str, name: str
) -> StrategyRecord:
    """Return the strategy if the caller may see it; foreign ones are reported like missing ones."""
    record = await store.get(owner, name)
    if record is None or not principal.can_see(record.user_id):
        raise StrategyNotFound(name)
    return record


@router.get("/list")
async def list_strategies(
    principal: ReaderDep,
    store: StrategiesDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    user_id: Annotated[str | None, Query(max_length=200, description="admins only: one user's")] = None,
) -> StrategyList:
    """List the built-ins with their params and defaults, and a page of your uploaded strategies."""
    limit = min(limit, settings.page_size_max)
    owner = user_id if principal.is_admin else principal.user_id
    page = await store.page(owner, limit, offset)
    following = offset + len(page.items)
    return StrategyList(
        builtins=[BuiltinInfo.from_class(name, cls) for name, cls in sorted(BUILTINS.items())],
        items=[StrategyPublic.from_record(r) for r in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=following if following < page.total else None,
    )


@router.post("/create", status_code=status.HTTP_201_CREATED, responses={**_WRITE, 409: {"model": ErrorBody}})
async def create_strategy(
    body: Annotated[
        StrategyCreate,
        Body(openapi_examples={"close_above_open": {"summary": "upload", "value": CREATE_EXAMPLE}}),
    ],
    principal: ReaderDep,
    store: StrategiesDep,
    settings: SettingsDep,
    response: Response,
) -> StrategyPublic:
    """Upload a strategy (one module, or a package: entry `source` + helper `files`) as version 1.

    Checked for size, names, syntax and one BaseStrategy subclass, without running it. A strategy of
    that name deleted earlier keeps its versions: the new one continues their numbers.
    """
    principal.require(Role.RESEARCHER)
    if body.name in BUILTINS or body.name in RESERVED:
        taken = sorted({*BUILTINS, *RESERVED})
        raise Conflict(f"name must differ from the built-ins and {taken}, was {body.name!r}", field="name")
    class_name = strategy_class_name(
        body.source,
        max_bytes=settings.strategy_source_max_bytes,
        class_name=body.class_name,
        files=body.files,
    )
    if await store.count(principal.user_id) >= settings.strategies_per_user_max:
        raise Conflict(f"at most {settings.strategies_per_user_max} strategies per user; delete one first")
    earlier = await store.versions(principal.user_id, body.name)  # of a deleted strategy of that name
    now = utc_now()
    record = StrategyRecord(
        user_id=principal.user_id,
        name=body.name,
        source=body.source,
        files=body.files,
        class_name=class_name,
        params=body.params,
        description=body.description,
        version=earlier[-1].version + 1 if earlier else 1,
        created_at=now,
        updated_at=now,
    )
    if not await store.insert(record):
        raise Conflict(
            f"you already have a strategy named {body.name!r}; PUT /strategy/{body.name} updates it",
            field="name",
        )
    response.headers["Location"] = f"/strategy/{body.name}"
    return StrategyPublic.from_record(record)


@router.get("/{name}", responses=_NOT_FOUND)
async def get_strategy(
    name: NamePath, principal: ReaderDep, store: StrategiesDep, owner: OwnerQuery = None
) -> StrategyPublic | BuiltinInfo:
    """Return a built-in (by its name) or one of your uploaded strategies with its source and version."""
    if name in BUILTINS:
        return BuiltinInfo.from_class(name, BUILTINS[name])
    return StrategyPublic.from_record(
        await visible_strategy(store, principal, _owner(principal, owner), name)
    )


@router.put("/{name}", responses={**_NOT_FOUND, **_WRITE, 409: {"model": ErrorBody}})
async def update_strategy(
    name: NamePath,
    body: StrategyUpdate,
    principal: ReaderDep,
    store: StrategiesDep,
    settings: SettingsDep,
    owner: OwnerQuery = None,
) -> StrategyPublic:
    """Store a new version of an uploaded strategy (latest + 1); every earlier version stays runnable."""
    stored = await visible_strategy(store, principal, _owner(principal, owner), name)
    principal.require(Role.RESEARCHER)
    if body.expected_version is not None and body.expected_version != stored.version:
        raise Conflict(
            f"expected_version must be the stored version {stored.version}, was {body.expected_version}",
            field="expected_version",
        )
    class_name = strategy_class_name(
        body.source,
        max_bytes=settings.strategy_source_max_bytes,
        class_name=body.class_name,
        files=body.files,
    )
    record = stored.model_copy(
        update={
            "source": body.source,
            "files": body.files,
            "class_name": class_name,
            "params": body.params,
            "description": body.description,
            "version": stored.version + 1,
            "updated_at": utc_now(),
        }
    )
    if not await store.replace(record, expected_version=stored.version):
        raise Conflict(f"strategy {name!r} was updated concurrently; read it and retry", field="name")
    return StrategyPublic.from_record(record)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses={**_NOT_FOUND, **_WRITE})
async def delete_strategy(
    name: NamePath, principal: ReaderDep, store: StrategiesDep, owner: OwnerQuery = None
) -> Response:
    """Delete an uploaded strategy: no new runs; its versions stay readable to explain finished runs."""
    stored = await visible_strategy(store, principal, _owner(principal, owner), name)
    principal.require(Role.RESEARCHER)
    await store.delete(stored.user_id, stored.name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def visible_versions(
    store: StrategyStore, principal: Principal, owner: str, name: str
) -> list[StrategyRecord]:
    """Return every stored version if the caller may see them; foreign ones look like missing ones."""
    versions = await store.versions(owner, name)
    if not versions or not principal.can_see(owner):
        raise StrategyNotFound(name)
    return versions


@router.get("/{name}/versions", responses=_NOT_FOUND)
async def list_versions(
    name: NamePath, principal: ReaderDep, store: StrategiesDep, owner: OwnerQuery = None
) -> StrategyVersionList:
    """List every stored version of an uploaded strategy, oldest first (also after it was deleted)."""
    owner_id = _owner(principal, owner)
    versions = await visible_versions(store, principal, owner_id, name)
    latest = await store.get(owner_id, name)
    return StrategyVersionList(
        name=name,
        user_id=owner_id,
        latest=None if latest is None else latest.version,
        versions=[StrategyVersionInfo.from_record(v) for v in versions],
    )


@router.get("/{name}/versions/{version}", responses=_NOT_FOUND)
async def get_version(
    name: NamePath,
    version: VersionPath,
    principal: ReaderDep,
    store: StrategiesDep,
    owner: OwnerQuery = None,
) -> StrategyPublic:
    """Return one stored version of an uploaded strategy with its source (also after it was deleted)."""
    owner_id = _owner(principal, owner)
    if not principal.can_see(owner_id):
        raise StrategyNotFound(name)
    record = await store.get_version(owner_id, name, version)
    if record is None:
        raise NotFound(f"strategy {name!r} has no version {version}", field="version")
    return StrategyPublic.from_record(record)
