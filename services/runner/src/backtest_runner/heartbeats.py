"""Runner liveness in NATS KV, and the sweep that removes the sandbox containers of runners that are gone.

Every runner puts its key (`<instance>.<runner id>`) in the bucket RUNNER_HEARTBEATS every
`ttl / 3` seconds; the bucket's TTL deletes a key nobody refreshed, so a runner killed with kill -9 is
"gone" one TTL after its last beat. Any runner of the same platform instance that then finds a sandbox
container labelled with the gone runner removes it; the gone runner's job was never acked, so JetStream
redelivers it after the consumer's ack wait.
"""

from __future__ import annotations

import asyncio
import logging
import time

from backtest_messaging import ELECTION_ERRORS
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from backtest_runner.sandbox.docker_sandbox import SandboxContainers

log = logging.getLogger(__name__)

HEARTBEAT_BUCKET = "RUNNER_HEARTBEATS"
BEATS_PER_TTL = 3  # a runner is declared gone only after missing this many beats in a row


def heartbeat_key(instance_id: str, runner_id: str) -> str:
    """Return the KV key of one runner of one platform instance."""
    return f"{instance_id}.{runner_id}"


async def heartbeat_bucket(js: JetStreamContext, ttl_s: float, replicas: int = 1) -> KeyValue:
    """Return the heartbeat bucket, creating it with this TTL and replicas if it does not exist yet."""
    try:
        return await js.key_value(HEARTBEAT_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=HEARTBEAT_BUCKET, history=1, ttl=ttl_s, replicas=replicas)
        )


class RunnerHeartbeats:
    """One runner's beat, and the liveness of the other runners of its instance."""

    def __init__(self, kv: KeyValue, instance_id: str, runner_id: str) -> None:
        self._kv = kv
        self._instance_id = instance_id
        self.runner_id = runner_id

    async def beat(self) -> None:
        """Refresh this runner's key (its value: the wall-clock time of the beat)."""
        await self._kv.put(heartbeat_key(self._instance_id, self.runner_id), f"{time.time():.3f}".encode())

    async def first_beat(self, timeout_s: float = 30.0) -> None:
        """Beat, retrying for up to `timeout_s` seconds: a bucket just created with replicas answers
        only once its stream has elected a leader (meanwhile: no response, or a timeout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                await self.beat()
                return
            except ELECTION_ERRORS:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def alive(self, runner_id: str) -> bool:
        """Return True if `runner_id` of this instance beat within the bucket's TTL."""
        try:
            entry = await self._kv.get(heartbeat_key(self._instance_id, runner_id))
        except KeyNotFoundError:  # expired (TTL), deleted or purged
            return False
        return entry.value is not None


async def remove_containers_of_gone_runners(
    heartbeats: RunnerHeartbeats, containers: SandboxContainers
) -> int:
    """Remove every sandbox container of this instance whose runner has no live heartbeat; return how many."""
    owners = await asyncio.to_thread(containers.runner_ids)
    removed = 0
    for runner_id in sorted(owners - {heartbeats.runner_id}):
        if not await heartbeats.alive(runner_id):
            count = await asyncio.to_thread(containers.remove_of, runner_id)
            if count:
                log.warning("removed %d sandbox container(s) of gone runner %s", count, runner_id)
            removed += count
    return removed


async def keep_beating(
    heartbeats: RunnerHeartbeats, containers: SandboxContainers | None, period_s: float
) -> None:
    """Beat every `period_s` seconds and sweep the containers of gone runners; runs until cancelled.

    A failed beat or sweep (NATS reconnecting, Docker busy) is logged and retried next period.
    """
    while True:
        try:
            await heartbeats.beat()
            if containers is not None:
                await remove_containers_of_gone_runners(heartbeats, containers)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("runner heartbeat or sweep failed (retrying in %.1f s): %r", period_s, exc)
        await asyncio.sleep(period_s)
