"""The shared infrastructure fixtures reach real servers: NATS JetStream, SecantusDB/MongoDB, Docker."""

from __future__ import annotations

import uuid

import docker
import nats
import pytest
from pymongo import MongoClient, ReadPreference
from pymongo.database import Database
from pymongo.errors import OperationFailure
from pymongo.write_concern import WriteConcern

pytestmark = pytest.mark.integration

HARDENED_PROBE = """
import os, socket, numpy, backtest_core
try:
    open("/usr/probe", "w")
    root = "writable"
except OSError:
    root = "read-only"
try:
    socket.create_connection(("127.0.0.1", 4222), timeout=1)
    net = "reachable"
except OSError:
    net = "unreachable"
open("/tmp/scratch", "w").write("x")
print(f"uid={os.getuid()} gid={os.getgid()} sum={int(numpy.arange(100).sum())} root={root} net={net}")
"""


async def test_jetstream_publish_then_pull_consume_returns_messages_in_order(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        stream = f"FIXTURE_{uuid.uuid4().hex[:8].upper()}"
        subject = f"fixture.{stream.lower()}"
        await js.add_stream(name=stream, subjects=[subject])
        acks = [await js.publish(subject, f"m{i}".encode()) for i in range(3)]
        consumer = await js.pull_subscribe(subject, durable="probe", stream=stream)
        messages = await consumer.fetch(3, timeout=5)
        for message in messages:
            await message.ack()
        info = await js.stream_info(stream)
        await js.delete_stream(stream)
    finally:
        await nc.close()

    assert [ack.seq for ack in acks] == [1, 2, 3]
    assert [m.data for m in messages] == [b"m0", b"m1", b"m2"]
    assert [m.metadata.sequence.stream for m in messages] == [1, 2, 3]
    assert info.state.messages == 3


def test_mongo_majority_insert_is_found_with_secondary_preferred_read(
    mongo_db: Database[dict[str, object]],
) -> None:
    majority = mongo_db.get_collection("probe", write_concern=WriteConcern(w="majority"))
    result = majority.insert_many(
        [{"symbol": "BTCUSDT", "close": 42_000.5}, {"symbol": "ETHUSDT", "close": 2_500.25}]
    )
    secondary = mongo_db.get_collection("probe", read_preference=ReadPreference.SECONDARY_PREFERRED)

    found = secondary.find_one({"symbol": "ETHUSDT"}, {"_id": 0})

    assert len(result.inserted_ids) == 2
    assert found == {"symbol": "ETHUSDT", "close": 2_500.25}
    assert secondary.count_documents({}) == 2
    assert mongo_db.client.admin.command("hello")["setName"] == "rs0"


def test_readonly_user_reads_but_cannot_write(
    mongo_db: Database[dict[str, object]], mongo_readonly_uri: str, mongo_uri: str
) -> None:
    if mongo_readonly_uri == mongo_uri:
        pytest.fail("the read-only URI equals the read-write URI: set MONGODB_READONLY_URI with MONGODB_URI")
    mongo_db.candles.insert_one({"symbol": "BTCUSDT", "n": 3})
    reader: MongoClient[dict[str, object]] = MongoClient(mongo_readonly_uri, serverSelectionTimeoutMS=10_000)
    with reader:
        candles = reader[mongo_db.name].candles
        found = candles.find_one({}, {"_id": 0})
        with pytest.raises(OperationFailure) as denied:
            candles.insert_one({"symbol": "ETHUSDT"})

    assert found == {"symbol": "BTCUSDT", "n": 3}
    assert denied.value.code == 13  # Unauthorized
    assert mongo_db.candles.count_documents({}) == 1


def test_sandbox_image_runs_hardened_as_nobody_without_network(
    docker_client: docker.DockerClient, sandbox_image: str
) -> None:
    container = docker_client.containers.run(
        sandbox_image,
        entrypoint=["python3.11", "-c", HARDENED_PROBE],
        detach=True,
        network_mode="none",
        read_only=True,
        tmpfs={"/tmp": "size=16m"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        pids_limit=128,
        mem_limit="1g",
        nano_cpus=1_000_000_000,
        user="65534:65534",
        environment={},
    )
    try:
        status = container.wait(timeout=60)
        output = container.logs(stdout=True, stderr=True).decode()
        host_config = container.attrs["HostConfig"]
    finally:
        container.remove(force=True)

    assert status["StatusCode"] == 0, output
    assert output.strip() == "uid=65534 gid=65534 sum=4950 root=read-only net=unreachable"
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["NetworkMode"] == "none"
    assert host_config["CapDrop"] == ["ALL"]
    assert host_config["PidsLimit"] == 128
    assert host_config["Memory"] == 1024**3
