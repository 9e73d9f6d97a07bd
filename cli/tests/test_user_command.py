"""`backtest user add` against the MongoDB-compatible server: the stored user signs in with that password."""

from __future__ import annotations

import io

import pytest
from backtest_cli.main import main
from backtest_core.contracts.accounts import USERS, verify_password
from pymongo.database import Database


def add(monkeypatch: pytest.MonkeyPatch, uri: str, db: str, *args: str, password: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["user", "add", *args, "--password-stdin", "--mongodb-uri", uri, "--database", db])


def test_add_stores_role_and_an_argon2_hash_only(monkeypatch, mongo_uri: str, mongo_db: Database) -> None:
    assert add(monkeypatch, mongo_uri, mongo_db.name, "ana", "--role", "viewer", password="s3cret-pass") == 0
    doc = mongo_db[USERS].find_one({"_id": "ana"})
    assert doc is not None and doc["role"] == "viewer"
    assert doc["password_hash"].startswith("$argon2id$") and "s3cret-pass" not in str(doc)
    assert verify_password(doc["password_hash"], "s3cret-pass")
    assert not verify_password(doc["password_hash"], "s3cret-pasS")


def test_existing_user_needs_replace(monkeypatch, mongo_uri: str, mongo_db: Database, capsys) -> None:
    assert add(monkeypatch, mongo_uri, mongo_db.name, "ana", "--role", "viewer", password="first-pass") == 0
    assert add(monkeypatch, mongo_uri, mongo_db.name, "ana", "--role", "admin", password="second-pass") == 2
    assert "user 'ana' exists; pass --replace" in capsys.readouterr().err
    assert (
        add(
            monkeypatch,
            mongo_uri,
            mongo_db.name,
            "ana",
            "--role",
            "admin",
            "--replace",
            password="second-pass",
        )
        == 0
    )
    doc = mongo_db[USERS].find_one({"_id": "ana"})
    assert doc is not None and doc["role"] == "admin" and verify_password(doc["password_hash"], "second-pass")


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("ana", "short", "password must have 8 to 1024 characters, was 5"),
        ("bad name", "long-enough", "user name must be 1-64 letters"),
    ],
)
def test_bad_input_exits_2_naming_it(
    monkeypatch, mongo_uri, mongo_db, capsys, name, password, message
) -> None:
    assert add(monkeypatch, mongo_uri, mongo_db.name, name, "--role", "viewer", password=password) == 2
    assert message in capsys.readouterr().err
    assert mongo_db[USERS].count_documents({}) == 0
