"""`backtest strategy upload|list|show|versions`: your uploaded strategies on the gateway.

`upload PATH` takes a .py file, a folder or a .zip (a package: `strategy.py` or the single top-level
module is the entry, the other .py files its helpers); it creates the strategy, or stores a new version
when the name exists (earlier versions stay runnable: `backtest submit --strategy NAME@VERSION`).
Exit codes as `backtest submit`: 0 success, 1 the gateway could not be reached, 2 bad input or refused.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backtest_core.errors import StrategyLoadError
from backtest_core.model.config import SourceStrategy

from backtest_cli.remote import EXIT_OK, GatewayClient, RemoteError, _add_common, _run
from backtest_cli.run import UsageError, parse_params
from backtest_cli.strategy_option import STORED_FORMS, package_spec, stored_strategy_ref

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `strategy` with its subcommands to the `backtest` parser."""
    strategy = subparsers.add_parser("strategy", help="upload, list and show your uploaded strategies")
    commands = strategy.add_subparsers(dest="strategy_command", required=True, metavar="SUBCOMMAND")
    upload = commands.add_parser(
        "upload", help="upload a .py file, folder or .zip (a new version if it exists)"
    )
    upload.add_argument("path", metavar="PATH", help="path/to/file.py, path/to/folder or path/to/package.zip")
    upload.add_argument("--name", help="the strategy's name (default: the file, folder or zip name)")
    upload.add_argument(
        "--class", dest="class_name", help="the strategy class when the entry defines several"
    )
    upload.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a default; repeat")
    upload.add_argument("--description", default="", help="one line saying what it does")
    upload.set_defaults(handler=handle_upload)
    for name, help_text, handler in (
        ("list", "list the built-ins and your uploaded strategies", handle_list),
        ("show", "show one uploaded strategy (NAME or NAME@VERSION) with its source", handle_show),
        ("versions", "list every stored version of an uploaded strategy", handle_versions),
    ):
        command = commands.add_parser(name, help=help_text)
        if name != "list":
            command.add_argument("name", metavar="NAME" if name == "versions" else "NAME[@VERSION]")
        command.set_defaults(handler=handler)
    for command in commands.choices.values():
        _add_common(command)
        command.add_argument("--json", action="store_true", help="print the gateway's answer as JSON")


def read_upload(path_text: str, class_name: str | None) -> SourceStrategy:
    """Read PATH: a .py file, or a package folder or .zip (UsageError saying what is wrong)."""
    path = Path(path_text)
    try:
        if path.suffix == ".py" and path.is_file():
            return SourceStrategy(source=path.read_text(encoding="utf-8"), class_name=class_name)
        spec = package_spec(path_text)
    except (OSError, UnicodeDecodeError, StrategyLoadError, ValueError) as error:
        raise UsageError(f"argument PATH: {error}") from None
    if spec is None:
        raise UsageError(f"argument PATH: expected a .py file, a folder or a .zip, was {path_text!r}")
    return spec.model_copy(update={"class_name": class_name}) if class_name else spec


def default_name(path_text: str) -> str:
    """Name a strategy after its file, folder or zip (`boll_rev.zip` -> `boll_rev`)."""
    name = Path(path_text.rstrip("/")).stem.lower().replace("-", "_")
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"option --name: lower-case letters, digits and _ starting with a letter are needed, and "
            f"{Path(path_text).name!r} does not give one; pass --name"
        )
    return name


def handle_upload(args: argparse.Namespace) -> int:
    """Create the strategy, or add a version to it; print its name, version and class."""

    def action(client: GatewayClient) -> int:
        spec = read_upload(args.path, args.class_name)
        name = args.name or default_name(args.path)
        body: dict[str, Any] = {
            "source": spec.source,
            "files": spec.files,
            "class_name": spec.class_name,
            "params": parse_params(args.param),
            "description": args.description,
        }
        current = _get_or_none(client, f"/strategy/{name}")
        if current is None:
            stored = client._call("POST", "/strategy/create", json={"name": name, **body})
        else:
            body["expected_version"] = current["version"]
            stored = client._call("PUT", f"/strategy/{name}", json=body)
        if args.json:
            print(json.dumps(stored, indent=2))
        else:
            helpers = f", {len(stored['files'])} helper modules" if stored["files"] else ""
            what = f"version {stored['version']} (class {stored['class_name']}{helpers})"
            print(f"uploaded {stored['name']} {what}")
            print(f"run it: backtest submit --strategy {stored['name']}@{stored['version']} --symbols ...")
        return EXIT_OK

    return _run(args, action)


def handle_list(args: argparse.Namespace) -> int:
    """Print the built-ins and your uploaded strategies (name, kind, latest version, class)."""

    def action(client: GatewayClient) -> int:
        body = client._call("GET", "/strategy/list", params={"limit": 1000})
        if args.json:
            print(json.dumps(body, indent=2))
            return EXIT_OK
        rows = [(b["name"], "builtin", "", "") for b in body["builtins"]]
        rows += [(i["name"], "user", str(i["version"]), i["class_name"]) for i in body["items"]]
        _table(("name", "kind", "version", "class"), rows)
        return EXIT_OK

    return _run(args, action)


def handle_show(args: argparse.Namespace) -> int:
    """Print one uploaded strategy (the latest, or NAME@VERSION) with its source and helper modules."""

    def action(client: GatewayClient) -> int:
        ref = _ref(args.name)
        path = f"/strategy/{ref['user']}"
        body = client._call("GET", path if "version" not in ref else f"{path}/versions/{ref['version']}")
        if args.json:
            print(json.dumps(body, indent=2))
            return EXIT_OK
        print(f"{body['name']} version {body['version']} (class {body['class_name']}), by {body['user_id']}")
        print(f"params: {json.dumps(body['params'])}")
        if body.get("description"):
            print(f"description: {body['description']}")
        for file_name, text in [("entry module", body["source"]), *sorted(body.get("files", {}).items())]:
            print(f"--- {file_name}\n{text.rstrip()}")
        return EXIT_OK

    return _run(args, action)


def handle_versions(args: argparse.Namespace) -> int:
    """Print every stored version of an uploaded strategy, oldest first."""

    def action(client: GatewayClient) -> int:
        name = _ref(args.name)["user"]
        body = client._call("GET", f"/strategy/{name}/versions")
        if args.json:
            print(json.dumps(body, indent=2))
            return EXIT_OK
        rows = [
            (str(v["version"]), v["class_name"], v["created_at"], ", ".join(v["files"]), v["description"])
            for v in body["versions"]
        ]
        _table(("version", "class", "stored at", "helper modules", "description"), rows)
        latest = body["latest"]
        print(f"latest: {latest}" if latest is not None else "deleted: its versions are kept for past runs")
        return EXIT_OK

    return _run(args, action)


def _ref(text: str) -> dict[str, Any]:
    try:
        ref = stored_strategy_ref(text) or stored_strategy_ref(f"user:{text}")
    except ValueError as error:
        raise UsageError(f"argument NAME: {error}") from None
    if ref is None:
        raise UsageError(f"argument NAME: expected {STORED_FORMS}, was {text!r}")
    return ref


def _get_or_none(client: GatewayClient, path: str) -> dict[str, Any] | None:
    try:
        return client._call("GET", path)
    except RemoteError as error:
        if error.status == 404:
            return None
        raise


def _table(header: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    sys.stdout.flush()
