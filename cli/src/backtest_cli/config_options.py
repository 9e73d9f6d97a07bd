"""The execution options of `backtest run` and `backtest submit`, derived once from `BacktestConfig`.

Each field of the config model gets one option (name, type, choices, help and the default shown in
`--help` come from the field), except the fields each command sets its own way (`COMMAND_FIELDS`).
A field whose type no option can express makes the derivation fail, naming it.
"""

from __future__ import annotations

import argparse
import re
import types
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from backtest_core.model.config import BacktestConfig, FeeModel, ParamValue
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

# Set by each command itself: the strategy and its parameters, and where the candles come from.
COMMAND_FIELDS = frozenset({"strategy", "params", "symbols", "interval"})
FEES_FIELD = "fees"  # the nested FeeModel: --fee (both), --maker-fee, --taker-fee
FLAG_OF_FIELD = {"parallel_symbols": "--parallel"}  # the rest are --field-name
METAVAR_OF_FIELD = {"parallel_symbols": "N", "max_holding_bars": "N"}
# Help for fields whose model Field has no description (a description in the model wins).
HELP_OF_FIELD = {
    "start": "first bar's open time, ISO-8601 (UTC if no offset), inclusive",
    "end": "end of the run, ISO-8601 (UTC if no offset), exclusive",
    "cash": "starting cash, quote currency",
    "fill": "fill price: the next bar's open, or this bar's close",
    "allow_short": "let SELL signals open short positions",
    "same_bar": "exit of a bar that touches both take-profit and stop-loss",
    "max_holding_bars": "close a position after this many bars",
}
FEE_HELP = "maker and taker fee per fill, fraction of notional (0.001 = 0.1%)"
_INT = re.compile(r"^[+-]?\d+$")


class UsageError(Exception):
    """An option value is malformed; the message names the option."""


@dataclass(frozen=True)
class ConfigOption:
    """One command-line option that sets one config field."""

    field: str
    flag: str
    kwargs: dict[str, Any]
    is_time: bool = False


def derive_options(model: type[BaseModel] = BacktestConfig) -> tuple[ConfigOption, ...]:
    """Return an option for each field of `model` outside `COMMAND_FIELDS` and the fees."""
    options = []
    for name, info in model.model_fields.items():
        if name in COMMAND_FIELDS or (model is BacktestConfig and name == FEES_FIELD):
            continue
        options.append(_option(model, name, info))
    return tuple(options)


def _option(model: type[BaseModel], name: str, info: FieldInfo) -> ConfigOption:
    flag = FLAG_OF_FIELD.get(name, "--" + name.replace("_", "-"))
    help_text = info.description or HELP_OF_FIELD.get(name)
    if help_text is None:
        raise TypeError(f"{model.__name__}.{name}: no help text; give the field a description")
    default = info.get_default(call_default_factory=True)
    kwargs: dict[str, Any] = {"dest": name, "default": None, "help": _with_default(help_text, default)}
    kind = _without_none(info.annotation)
    if kind is bool and default is False:
        return ConfigOption(name, flag, {**kwargs, "action": "store_true"})
    if typing.get_origin(kind) is Literal:
        return ConfigOption(name, flag, {**kwargs, "choices": typing.get_args(kind)})
    if kind is datetime:
        return ConfigOption(name, flag, {**kwargs, "metavar": "ISO-8601"}, is_time=True)
    if kind in (int, float, str):
        return ConfigOption(name, flag, {**kwargs, "type": kind, "metavar": METAVAR_OF_FIELD.get(name)})
    raise TypeError(
        f"{model.__name__}.{name}: no command-line option can express {info.annotation!r}; "
        "add one in backtest_cli.config_options"
    )


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arms = [arm for arm in typing.get_args(annotation) if arm is not type(None)]
        if len(arms) == 1:
            return _without_none(arms[0])
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def _with_default(help_text: str, default: Any) -> str:
    return f"{help_text} (default: {_shown(default)})".replace("%", "%%")


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:f}".rstrip("0").rstrip(".")
    return str(value)


OPTIONS = derive_options()
FEE_FLAGS = {name: f"--{name}-fee" for name in FeeModel.model_fields}  # maker -> --maker-fee
OPTION_OF_FIELD = {
    "strategy": "--strategy",
    "params": "--param",
    "interval": "--interval",
    FEES_FIELD: "--fee",
    **{option.field: option.flag for option in OPTIONS},
}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """Add the derived execution options and the fee options to a command's parser."""
    group = parser.add_argument_group("execution settings (backtest_core.model.config.BacktestConfig)")
    defaults = FeeModel()
    common = defaults.maker if defaults.maker == defaults.taker else None
    group.add_argument("--fee", type=float, default=None, help=_with_default(FEE_HELP, common))
    for name, flag in FEE_FLAGS.items():
        group.add_argument(
            flag,
            type=float,
            dest=f"{name}_fee",
            default=None,
            help=_with_default(f"{name} fee alone, over --fee", getattr(defaults, name)),
        )
    for option in OPTIONS:
        group.add_argument(option.flag, **option.kwargs)


def config_values(args: argparse.Namespace) -> dict[str, Any]:
    """Return the config fields the user set with the derived options (times parsed, fees as a dict)."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        value = getattr(args, option.field)
        if value is not None:
            values[option.field] = parse_time(value, option.flag) if option.is_time else value
    fees = fee_values(args)
    if fees:
        values[FEES_FIELD] = fees
    return values


def fee_values(args: argparse.Namespace) -> dict[str, float]:
    """Return maker/taker fees from --maker-fee/--taker-fee, else --fee; raise `UsageError` if invalid."""
    given = {name: getattr(args, f"{name}_fee") for name in FEE_FLAGS}
    fees = {name: args.fee if value is None else value for name, value in given.items()}
    fees = {name: value for name, value in fees.items() if value is not None}
    try:
        FeeModel(**fees)
    except ValidationError as error:
        flags = {name: "--fee" if given[name] is None else flag for name, flag in FEE_FLAGS.items()}
        raise UsageError(describe(error, flags)) from None
    return fees


def describe(error: ValidationError, option_of_field: dict[str, str] = OPTION_OF_FIELD) -> str:
    """Say which option is wrong, what was expected and what it was; each distinct message once."""
    messages = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        named = option_of_field.get(field, field or "--start/--end")
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f", was {value!r}"
        text = str(item["msg"]).removeprefix("Value error, ")
        messages.append(f"option {named}: {text}{shown}")
    return "; ".join(dict.fromkeys(messages))


def parse_params(pairs: list[str]) -> dict[str, ParamValue]:
    """Parse repeated `--param KEY=VALUE`: integers, then floats, then true/false, else text."""
    params: dict[str, ParamValue] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"option --param: expected KEY=VALUE with KEY a name like fast, was {pair!r}")
        if key in params:
            raise UsageError(f"option --param: {key} given twice, was {params[key]!r} and {text!r}")
        params[key] = _param_value(text.strip())
    return params


def _param_value(text: str) -> ParamValue:
    if _INT.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_time(text: str | None, option: str) -> datetime | None:
    """Parse an ISO-8601 date or time; without an offset it is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        expected = "ISO-8601 like 2019-01-01 or 2019-01-01T12:00Z"
        raise UsageError(f"option {option}: expected {expected}, was {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
