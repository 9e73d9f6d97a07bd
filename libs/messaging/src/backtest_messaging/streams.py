"""Declare the platform's JetStream streams from `contracts.STREAMS` once, whichever service starts first."""

from __future__ import annotations

from collections.abc import Iterable

from backtest_core.contracts import STREAMS, Stream, StreamSpec
from nats.errors import NoRespondersError, TimeoutError
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NoStreamResponseError, NotFoundError, ServiceUnavailableError

# JetStream drops a second message with the same id inside the stream's duplicate window.
MSG_ID_HEADER = "Nats-Msg-Id"
STREAM_NAME_IN_USE = 10058  # JetStream error code: a stream of that name exists with another config

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


async def declare_streams(js: JetStreamContext, names: Iterable[Stream], replicas: int = 1) -> None:
    """Create each named stream of `contracts.STREAMS` unless it exists; an existing one is left as it is.

    Race-safe: when another service creates the stream between the lookup and the creation, the
    creation's error is swallowed once the stream is seen to exist; otherwise that error is raised.
    """
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
            await js.add_stream(stream_config(spec, replicas))
        except BadRequestError as error:
            try:
                await js.stream_info(spec.name.value)  # created concurrently by another service: fine
            except NotFoundError:
                raise error from None
