"""A three-node NATS cluster with R3 streams: kill -9 of the stream's leader (the node the publisher is
connected to) in the middle of publishing loses no message and stores none twice, and the client
reconnects to another node."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats
import pytest
from backtest_core.contracts import Stream, Subject
from backtest_messaging import ELECTION_ERRORS, declare_streams
from backtest_messaging.streams import NO_SUITABLE_PEERS, server_urls
from nats.js.api import KeyValueConfig
from nats.js.errors import BadRequestError, BucketNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

pytestmark = pytest.mark.integration

MESSAGES = 300
KILL_AT = 100
RETRYABLE = (*ELECTION_ERRORS, nats.errors.ConnectionClosedError)
T = TypeVar("T")


async def _retry(call: Callable[[], Awaitable[T]], what: str) -> T:
    """Await `call()` until it answers: while a new leader is elected, JetStream requests time out."""
    for _ in range(100):
        try:
            return await call()
        except RETRYABLE:
            await asyncio.sleep(0.2)
    raise AssertionError(f"{what} never answered")


def test_server_urls_splits_a_comma_separated_setting() -> None:
    assert server_urls("nats://a:1, nats://b:2,,") == ["nats://a:1", "nats://b:2"]
    assert server_urls("nats://a:1") == ["nats://a:1"]
    with pytest.raises(ValueError, match="no NATS server URL"):
        server_urls(" , ")


async def _publish_once(js: nats.js.JetStreamContext, msg_id: str) -> bool:
    """Publish until JetStream acknowledges it (a retry carries the same id); return True if it was
    reported a duplicate (an earlier attempt had been stored)."""
    for _ in range(200):
        try:
            ack = await js.publish(
                Subject.JOB_RUN,
                msg_id.encode(),
                stream=Stream.JOBS.value,
                headers={"Nats-Msg-Id": msg_id},
                timeout=2,
            )
            return bool(ack.duplicate)
        except RETRYABLE:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{msg_id} was never acknowledged")


def test_killing_the_leader_of_an_r3_stream_mid_publish_loses_nothing_and_duplicates_nothing(
    nats_cluster_factory,
) -> None:
    cluster = nats_cluster_factory()

    async def main() -> None:
        admin = await nats.connect(server_urls(cluster.url))
        await declare_streams(admin.jetstream(), [Stream.JOBS], replicas=3)
        info = await admin.jetstream().stream_info(Stream.JOBS.value)
        await admin.close()
        assert info.config.num_replicas == 3
        assert info.cluster is not None and info.cluster.leader is not None
        leader = int(info.cluster.leader.removeprefix("n"))
        others = [url for index, url in enumerate(cluster.urls) if index != leader]

        reconnects: list[str] = []

        async def reconnected() -> None:
            reconnects.append(str(nc.connected_url.netloc if nc.connected_url else ""))

        nc = await nats.connect(
            [cluster.urls[leader], *others],
            dont_randomize=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            reconnected_cb=reconnected,
        )
        assert nc.connected_url is not None and nc.connected_url.port == cluster.nodes[leader].port
        js = nc.jetstream()
        ids = [f"job-{index:04d}" for index in range(MESSAGES)]
        for index, msg_id in enumerate(ids):
            if index == KILL_AT:
                cluster.nodes[leader].kill()
            await _publish_once(js, msg_id)

        after = await _retry(lambda: js.stream_info(Stream.JOBS.value), "stream info")
        assert after.cluster is not None and after.cluster.leader != f"n{leader}"
        assert after.state.messages == MESSAGES
        consumer = await _retry(
            lambda: js.pull_subscribe(Subject.JOB_RUN, durable="cluster-check", stream=Stream.JOBS.value),
            "consumer creation",
        )
        seen: list[str] = []
        while len(seen) < MESSAGES:
            for message in await _retry(lambda: consumer.fetch(100, timeout=2), "fetch"):
                seen.append(message.data.decode())
                await message.ack_sync()
        await nc.close()

        assert Counter(seen) == Counter(ids), "every message exactly once"
        assert len(reconnects) >= 1 and all(str(cluster.nodes[leader].port) not in r for r in reconnects)

    asyncio.run(main())


async def _bucket_seen_from(client: nats.NATS, name: str) -> KeyValue:
    """The bucket as one node's client sees it (a bucket just created reaches every node shortly after)."""
    for _ in range(100):
        try:
            return await client.jetstream().key_value(name)
        except BucketNotFoundError:
            await asyncio.sleep(0.2)
    raise AssertionError(f"bucket {name} never reached {client.connected_url}")


def test_concurrent_compare_and_set_of_one_kv_key_on_an_r3_bucket_has_one_winner_each_round(
    nats_cluster_factory,
) -> None:
    """Schedulers, gateways and the admission state rely on it; nats-server < 2.9.21 let both win
    (nats-server#4320: 103 of 200 rounds here with Debian's 2.9.10)."""
    cluster = nats_cluster_factory()

    async def main() -> list[int]:
        clients = [await nats.connect(url) for url in cluster.urls]  # a writer on each node
        first = clients[0].jetstream()
        for _ in range(100):  # a cluster just started may not know every peer yet: no placement for R3
            try:
                await first.create_key_value(KeyValueConfig(bucket="cas", history=1, replicas=3))
                break
            except BadRequestError as error:
                if error.err_code != NO_SUITABLE_PEERS:
                    raise
                await asyncio.sleep(0.2)
        buckets = [await _bucket_seen_from(client, "cas") for client in clients]
        revision = await _retry(lambda: buckets[0].put("key", b"0"), "put")
        winners = []
        for round_ in range(50):

            async def update(bucket: KeyValue, value: bytes, last: int = revision) -> bool:
                try:
                    await bucket.update("key", value, last=last)
                except KeyWrongLastSequenceError:
                    return False
                return True

            won = await asyncio.gather(*(update(b, f"{round_}-{i}".encode()) for i, b in enumerate(buckets)))
            winners.append(sum(won))
            revision = (await buckets[0].get("key")).revision or 0
        for client in clients:
            await client.close()
        return winners

    assert set(asyncio.run(main())) == {1}
