"""Declare the platform's JetStream streams from `contracts.STREAMS` once, whichever service starts first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from backtest_core.contracts import STREAMS, Stream, StreamSpec
from nats.errors import NoRespondersError, TimeoutError
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NoStreamResponseError, NotFoundError, ServiceUnavailableError

# JetStream drops a second message with the same id inside the stream's duplicate window.
MSG_ID_HEADER = "Nats-Msg-Id"
STREAM_NAME_IN_USE = 10058  # JetStream error code: a stream of that name exists with another config
NO_SUITABLE_PEERS = 10005  # JetStream error code: the cluster knows fewer servers than the replicas asked
DECLARE_WAIT_S = 60.0

# What a JetStream request answers while a clustered stream has no leader (a node died, an election is
# under way): no response, no responders, a timeout, or 503 "JetStream temporarily unavailable" (2.10).
# Retrying is safe for a publish with a Nats-Msg-Id and for a read; each caller bounds its retries.
ELECTION_ERRORS = (NoStreamResponseError, NoRespondersError, TimeoutError, ServiceUnavailableError)


def stream_config(spec: StreamSpec, replicas: int = 1) -> StreamConfig:
    """Translate a StreamSpec into nats-py's StreamConfig (file storage; ages in seconds).

    A work queue forgets a message once it is acked; the other streams keep history for `max_age_s`.
    `replicas` > 1 needs a JetStream cluster of at least that many servers (3: one node may fail).
    """
    return StreamConfig(
        name=spec.name.value,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.WORK_QUEUE if spec.work_queue else RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=spec.max_age_s,
        duplicate_window=spec.duplicate_window_s,
        num_replicas=replicas,
    )


def server_urls(nats_url: str) -> list[str]:
    """Split a services' NATS URL setting into the client's server list: one URL or several, comma
    separated (the nodes of a cluster), e.g. "nats://a:4222,nats://b:4222"; blanks are ignored."""
    urls = [url.strip() for url in nats_url.split(",") if url.strip()]
    if not urls:
        raise ValueError(f"no NATS server URL in {nats_url!r}")
    return urls


async def declare_streams(
    js: JetStreamContext, names: Iterable[Stream], replicas: int = 1, wait_s: float = DECLARE_WAIT_S
) -> None:
    """Create each named stream of `contracts.STREAMS` unless it exists; an existing one is left as it is.

    Race-safe: when another service creates the stream between the lookup and the creation, the
    creation's error is swallowed once the stream is seen to exist; otherwise that error is raised. A
    cluster still forming (no leader yet, or too few peers known for `replicas`) is waited for, up to
    `wait_s` seconds: services and their NATS servers start together.
    """
    wanted = set(names)
    deadline = time.monotonic() + wait_s
    for spec in STREAMS:
        if spec.name not in wanted:
            continue
        while True:
            try:
                await _declare(js, spec, replicas)
                break
            except (*ELECTION_ERRORS, BadRequestError) as error:
                forming = not isinstance(error, BadRequestError) or error.err_code == NO_SUITABLE_PEERS
                if not forming or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)


async def _declare(js: JetStreamContext, spec: StreamSpec, replicas: int) -> None:
    try:
        await js.stream_info(spec.name.value)
        return
    except NotFoundError:
        pass
    try:
        await js.add_stream(stream_config(spec, replicas))
    except BadRequestError as error:
        try:
            await js.stream_info(spec.name.value)  # created concurrently by another service: fine
        except NotFoundError:
            raise error from None
