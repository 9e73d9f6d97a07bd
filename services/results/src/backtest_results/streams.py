"""Declares the platform's JetStream streams from contracts.STREAMS, idempotently."""

from __future__ import annotations

from collections.abc import Iterable

from backtest_core.contracts import StreamSpec
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

STREAM_NAME_IN_USE = 10058  # JetStream error code: a stream of that name exists with another config


def stream_config(spec: StreamSpec) -> StreamConfig:
    """Return the JetStream config of a stream spec (file storage; a work queue forgets acked messages)."""
    return StreamConfig(
        name=spec.name.value,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.WORK_QUEUE if spec.work_queue else RetentionPolicy.LIMITS,
        max_age=spec.max_age_s,
        duplicate_window=spec.duplicate_window_s,
        storage=StorageType.FILE,
    )


async def declare_streams(js: JetStreamContext, specs: Iterable[StreamSpec]) -> None:
    """Create each stream unless it exists; an existing stream is left as its first declarer made it."""
    for spec in specs:
        try:
            await js.add_stream(stream_config(spec))
        except BadRequestError as error:
            if error.err_code != STREAM_NAME_IN_USE:
                raise
