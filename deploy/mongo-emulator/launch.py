"""Run the MongoDB-compatible server (SecantusDB) as a single-member replica set, in its own process.

The product never imports SecantusDB: it only ever sees a ``MONGODB_URI``. This launcher is what
``scripts/infra up`` and the test fixtures start, e.g.::

    python deploy/mongo-emulator/launch.py --port 27017 --storage-path .run/mongo \
        --auth --user admin:SECRET:root --user reader:SECRET:readAnyDatabase

With ``--auth`` the users are created (or their passwords reset) on a private, unauthenticated
instance over the same storage first, because SecantusDB has no localhost exception; then the server
is started on ``--port`` with SCRAM-SHA-256 authentication required. It serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from pymongo import MongoClient
from secantus.server import SecantusDBServer


@dataclass(frozen=True)
class UserSpec:
    """One user to provision: name, password and a role (``role`` or ``role@db``, default db admin)."""

    name: str
    password: str
    role: str
    role_db: str


def parse_user(text: str) -> UserSpec:
    """Parse ``NAME:PASSWORD:ROLE[@DB]`` into a :class:`UserSpec`."""
    parts = text.split(":")
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD:ROLE[@DB], was {text!r}")
    name, password, role = parts
    role, _, role_db = role.partition("@")
    return UserSpec(name=name, password=password, role=role, role_db=role_db or "admin")


def provision_users(storage_path: str, replica_set: str, users: list[UserSpec]) -> None:
    """Create or update ``users`` on a private unauthenticated instance over ``storage_path``."""
    server = SecantusDBServer(
        host="127.0.0.1", port=0, storage_path=storage_path, replica_set_name=replica_set
    )
    server.start()
    try:
        uri = f"mongodb://127.0.0.1:{server.port}/?directConnection=true"
        client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=10_000)
        with client:
            admin = client["admin"]
            existing = {u["user"] for u in admin.command("usersInfo")["users"]}
            for user in users:
                roles = [{"role": user.role, "db": user.role_db}]
                command = "updateUser" if user.name in existing else "createUser"
                admin.command(command, user.name, pwd=user.password, roles=roles)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Start the server and block until a termination signal arrives."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--storage-path", required=True)
    parser.add_argument("--replica-set", default="rs0")
    parser.add_argument("--auth", action="store_true", help="require SCRAM-SHA-256 authentication")
    parser.add_argument("--user", type=parse_user, action="append", default=[], help="NAME:PWD:ROLE[@DB]")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error(f"--host must be a loopback address, was {args.host!r}")
    if args.user and not args.auth:
        parser.error("--user needs --auth")
    Path(args.storage_path).mkdir(parents=True, exist_ok=True)
    if args.auth and args.user:
        provision_users(args.storage_path, args.replica_set, args.user)

    server = SecantusDBServer(
        host=args.host,
        port=args.port,
        storage_path=args.storage_path,
        replica_set_name=args.replica_set,
        require_auth=args.auth,
        enable_test_commands=False,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(f"secantusdb listening on {server.host}:{server.port} replicaSet={args.replica_set}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
