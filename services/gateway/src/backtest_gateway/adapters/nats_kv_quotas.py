"""QuotaStore on the JetStream key-value bucket GATEWAY_QUOTAS, shared by every gateway of an instance.

Each entry is changed by compare-and-set on its revision (create when absent, update at the revision
read, delete at it; an unchanged value is not written), retried when another gateway wrote in between.
The bucket's TTL drops entries nobody wrote for that long; callers choose it so an expired entry means
the same as an absent one (a full rate bucket, no stream lease). Keys are hashed: user names may hold
characters KV keys may not.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import nats.errors
from backtest_messaging import ELECTION_ERRORS
from faststream.nats import NatsBroker
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from backtest_gateway.errors import QuotasUnavailable
from backtest_gateway.ports import QuotaChange

QUOTAS_BUCKET = "GATEWAY_QUOTAS"
CAS_ATTEMPTS = 50  # concurrent writers of one user's entry; each lost race costs one round trip
OP_TIMEOUT_S = 1.0  # a quota check must not hold a request long when NATS is away

_UNREACHABLE = (*ELECTION_ERRORS, nats.errors.ConnectionClosedError, asyncio.TimeoutError)


def kv_key(scope: str, key: str) -> str:
    """The KV key of a quota key: its namespace (text before the first '.') and a digest of the platform
    instance's scope and the rest (two instances sharing one NATS keep apart quotas)."""
    namespace, _, rest = key.partition(".")
    digest = hashlib.sha256(scope.encode() + b"\0" + rest.encode()).hexdigest()[:40]
    return f"{namespace}.{digest}"


class NatsKvQuotaStore:
    """Quota entries of one platform instance (`scope`: its database name) in one KV bucket; `open()` once
    the broker is connected."""

    def __init__(self, broker: NatsBroker, scope: str, replicas: int = 1) -> None:
        self._broker = broker
        self._scope = scope
        self._replicas = replicas
        self._kv: KeyValue | None = None

    async def open(self, ttl_s: float) -> None:
        """Create the bucket with this TTL if missing (idempotent; an existing bucket keeps its TTL)."""
        js = self._broker.config.connection_state.stream
        try:
            self._kv = await js.key_value(QUOTAS_BUCKET)
        except BucketNotFoundError:
            config = KeyValueConfig(bucket=QUOTAS_BUCKET, history=1, ttl=ttl_s, replicas=self._replicas)
            self._kv = await js.create_key_value(config)

    async def change(self, key: str, change: QuotaChange) -> Any:
        if self._kv is None or not self._broker.connection.is_connected:
            raise QuotasUnavailable(f"quota store {QUOTAS_BUCKET} not reachable (NATS disconnected)")
        try:
            return await asyncio.wait_for(
                self._change(self._kv, kv_key(self._scope, key), change), OP_TIMEOUT_S
            )
        except _UNREACHABLE as error:
            raise QuotasUnavailable(f"quota store {QUOTAS_BUCKET}: {type(error).__name__}") from error

    async def _change(self, kv: KeyValue, key: str, change: QuotaChange) -> Any:
        for _ in range(CAS_ATTEMPTS):
            try:
                entry = await kv.get(key)
                value, revision = entry.value, entry.revision
            except KeyNotFoundError:  # absent, deleted or expired
                value, revision = None, None
            new_value, result = change(value or None)
            if new_value == (value or None):
                return result  # unchanged: nothing to write
            try:
                if new_value is None:
                    if revision is not None:
                        await kv.delete(key, last=revision)
                elif revision is None:
                    await kv.create(key, new_value)
                else:
                    await kv.update(key, new_value, last=revision)
            except KeyWrongLastSequenceError:
                continue  # another gateway wrote this entry since the read: read it again
            return result
        raise QuotasUnavailable(f"quota entry {key}: {CAS_ATTEMPTS} concurrent writes in a row")
