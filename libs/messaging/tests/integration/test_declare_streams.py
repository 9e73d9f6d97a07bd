"""declare_streams against a real nats-server with JetStream (shared `nats_url`, private servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import nats
import pytest
from backtest_core.contracts import STREAMS, Stream, Subject
from backtest_messaging import declare_streams, stream_config
from backtest_testinfra import NatsServer
from nats.aio.client import Client as NatsClient
from nats.js.api import RetentionPolicy, StorageType
from nats.js.errors import BadRequestError

pytestmark = pytest.mark.integration

DAY_S = 24 * 3600.0


async def _connect(url: str) -> AsyncIterator[NatsClient]:
    nc = await nats.connect(url)
    try:
        yield nc
    finally:
        await nc.close()


@pytest.fixture
async def shared_nc(nats_url: str) -> AsyncIterator[NatsClient]:
    async for nc in _connect(nats_url):
        yield nc


@pytest.fixture
async def private_nc(nats_server_factory: Callable[[], NatsServer]) -> AsyncIterator[NatsClient]:
    async for nc in _connect(nats_server_factory().url):
        yield nc


def test_stream_config_of_the_jobs_work_queue_uses_file_storage_and_spec_ages() -> None:
    spec = next(spec for spec in STREAMS if spec.name is Stream.JOBS)
    config = stream_config(spec)
    assert config.name == "BACKTEST_JOBS"
    assert config.subjects == list(spec.subjects)
    assert config.retention is RetentionPolicy.WORK_QUEUE
    assert config.storage is StorageType.FILE
    assert config.max_age == 7 * DAY_S
    assert config.duplicate_window == 120.0


async def test_declared_streams_carry_the_contract_subjects_retention_and_ages(shared_nc: NatsClient) -> None:
    js = shared_nc.jetstream()
    await declare_streams(js, list(Stream))
    for spec in STREAMS:
        config = (await js.stream_info(spec.name.value)).config
        assert config.subjects == list(spec.subjects)
        expected = RetentionPolicy.WORK_QUEUE if spec.work_queue else RetentionPolicy.LIMITS
        assert config.retention == expected
        assert config.storage == StorageType.FILE
        assert config.max_age == pytest.approx(spec.max_age_s)
        assert config.duplicate_window == pytest.approx(spec.duplicate_window_s)
    dead = (await js.stream_info(Stream.DEAD.value)).config
    assert dead.max_age == pytest.approx(30 * DAY_S)


async def test_declaring_twice_keeps_the_stored_messages(private_nc: NatsClient) -> None:
    js = private_nc.jetstream()
    await declare_streams(js, [Stream.DEAD])
    await js.publish(Subject.DEAD_JOB, b"{}", stream=Stream.DEAD.value)
    await declare_streams(js, [Stream.DEAD])
    assert (await js.stream_info(Stream.DEAD.value)).state.messages == 1


async def test_only_the_named_streams_are_created(private_nc: NatsClient) -> None:
    js = private_nc.jetstream()
    await declare_streams(js, [Stream.EVENTS, Stream.JOBS])
    names = {info.config.name for info in await js.streams_info()}
    assert names == {"BACKTEST_EVENTS", "BACKTEST_JOBS"}


async def test_an_existing_stream_is_left_with_its_own_config(private_nc: NatsClient) -> None:
    js = private_nc.jetstream()
    spec = next(spec for spec in STREAMS if spec.name is Stream.EVENTS)
    await js.add_stream(name=spec.name.value, subjects=list(spec.subjects), max_age=60.0)
    await declare_streams(js, [Stream.EVENTS])
    assert (await js.stream_info(spec.name.value)).config.max_age == pytest.approx(60.0)


async def test_a_stream_that_cannot_be_created_raises_the_server_error(private_nc: NatsClient) -> None:
    js = private_nc.jetstream()
    spec = next(spec for spec in STREAMS if spec.name is Stream.EVENTS)
    await js.add_stream(name="SQUATTER", subjects=list(spec.subjects))  # takes the events' subjects
    with pytest.raises(BadRequestError) as caught:
        await declare_streams(js, [Stream.EVENTS])
    assert caught.value.err_code == 10065  # subjects overlap with an existing stream
