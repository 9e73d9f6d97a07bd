"""`backtest user add NAME --role ROLE`: store a dashboard user (argon2 password hash) in MongoDB.

The database is found as `backtest ingest` finds it (`--mongodb-uri`, ``$MONGODB_URI``, the platform's
``.run/env``). The password comes from a prompt (asked twice) or, with `--password-stdin`, from the
first line of standard input; never from the command line.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from backtest_core.contracts.accounts import USERS, AccountError, check_password, check_user, user_document
from backtest_core.contracts.auth import ROLES
from backtest_marketdata.mongo import DEFAULT_DATABASE, database_name, writer_client
from pymongo.errors import DuplicateKeyError, PyMongoError

from backtest_cli.ingest import database_problem, mongodb_uri

EXIT_OK, EXIT_BAD_INPUT, EXIT_DATABASE = 0, 2, 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `user add` to the `backtest` parser."""
    parser = subparsers.add_parser("user", help="manage dashboard users (operators)")
    actions = parser.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", help="add a user who signs in with a password", description="Add a dashboard user."
    )
    add.add_argument("name", help="user name (the tokens' `sub`)")
    add.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    add.add_argument(
        "--replace", action="store_true", help="replace the role and password of an existing user"
    )
    add.add_argument(
        "--mongodb-uri", help="MongoDB URI (default: $MONGODB_URI, else the platform's .run/env)"
    )
    add.add_argument("--database", help=f"database (default: the URI's, else {DEFAULT_DATABASE})")
    add.set_defaults(handler=handle_add)


def read_password(from_stdin: bool) -> str:
    """Return the password from stdin's first line, or from a prompt asked twice."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("password again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def handle_add(args: argparse.Namespace) -> int:
    """Store the user; bad input exits 2, a database problem 3, each with one message on stderr."""
    try:
        check_user(args.name, args.role)
        password = read_password(args.password_stdin)
        check_password(password)
    except AccountError as error:
        print(f"backtest user add: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    uri = mongodb_uri(args.mongodb_uri)
    document = user_document(args.name, args.role, password)
    try:
        with writer_client(uri.value, serverSelectionTimeoutMS=10_000) as client:
            users = client[args.database or database_name(uri.value)][USERS]
            if args.replace:
                users.replace_one({"_id": args.name}, document, upsert=True)
            else:
                users.insert_one(document)
    except DuplicateKeyError:
        print(f"backtest user add: user {args.name!r} exists; pass --replace to change it", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PyMongoError as error:
        print(f"backtest user add: {database_problem(uri, error)}", file=sys.stderr)
        return EXIT_DATABASE
    print(f"backtest user add: {args.name} ({args.role}) stored in {uri.source}'s database", file=sys.stderr)
    return EXIT_OK
