"""Declare JetStream streams from `contracts.STREAMS` idempotently (whichever service starts first)."""

from __future__ import annotations

from collections.abc import Iterable

from backtest_core.contracts import STREAMS, Stream, StreamSpec
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError


def stream_config(spec: StreamSpec) -> StreamConfig:
    """Translate a StreamSpec into nats-py's StreamConfig (file storage; ages in seconds)."""
    return StreamConfig(
        name=spec.name.value,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.WORK_QUEUE if spec.work_queue else RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=spec.max_age_s,
        duplicate_window=spec.duplicate_window_s,
    )


async def declare_streams(js: JetStreamContext, names: Iterable[Stream]) -> None:
    """Create each named stream unless it exists; an existing stream is left exactly as it is."""
    wanted = set(names)
    for spec in STREAMS:
        if spec.name not in wanted:
            continue
        try:
            await js.stream_info(spec.name.value)
            continue
        except NotFoundError:
            pass
        try:
            await js.add_stream(stream_config(spec))
        except BadRequestError:
            await js.stream_info(spec.name.value)  # created concurrently by another service: fine
