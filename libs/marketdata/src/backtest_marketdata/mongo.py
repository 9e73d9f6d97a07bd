"""MongoDB clients for market data: a majority-writing client, a read-only secondary-preferred one."""

from __future__ import annotations

from typing import Any

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import OperationFailure
from pymongo.read_preferences import SecondaryPreferred
from pymongo.uri_parser import parse_uri

DEFAULT_DATABASE = "backtest"


def database_name(uri: str, default: str = DEFAULT_DATABASE) -> str:
    """Return the database named in the URI path, or `default`."""
    return str(parse_uri(uri).get("database") or default)


def writer_client(uri: str, **options: Any) -> MongoClient[dict[str, Any]]:
    """Return a client that writes to the primary with majority write concern."""
    return MongoClient(uri, w="majority", tz_aware=True, **options)


def reader_client(uri: str, **options: Any) -> MongoClient[dict[str, Any]]:
    """Return a client that reads from a secondary when one is available (use a read-only user's URI)."""
    return MongoClient(uri, read_preference=SecondaryPreferred(), tz_aware=True, **options)


def ensure_read_only_user(db: Database[dict[str, Any]], username: str, password: str) -> bool:
    """Create (or re-password) a user with only the `read` role on `db`; return True if created.

    Works on MongoDB and on SecantusDB (which enforces roles when started with `--auth`).
    """
    roles = [{"role": "read", "db": db.name}]
    try:
        db.command("createUser", username, pwd=password, roles=roles)
        return True
    except OperationFailure as error:
        if error.code != 51003:  # user already exists
            raise
    db.command("updateUser", username, pwd=password, roles=roles)
    return False
