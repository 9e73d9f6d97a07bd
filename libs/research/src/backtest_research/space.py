"""A parameter space from CLI-style specs: `name=values`, one spec per parameter.

Forms of `values`:
- a list `30,50,100` (numbers or words);
- a range `start:stop:step`, both ends included when the steps land on `stop` (`5:50:5` is 5, 10, ... 50);
- a distribution, for random search: `int:LOW:HIGH` and `float:LOW:HIGH` (uniform, ends included),
  `log:LOW:HIGH` (log-uniform float), `cat:a,b,c` (one of the words).
Grid search needs lists and ranges only; random search samples any form (a list or range uniformly).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

Value = int | float | str | bool
DISTRIBUTIONS = ("int", "float", "log", "cat")


class SpaceError(ValueError):
    """A parameter spec that cannot be read; the message names the spec and what was wrong."""


def _scalar(text: str) -> Value:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text


@dataclass(frozen=True, slots=True)
class Dimension:
    """One parameter: its grid values (None for a continuous distribution) and how to sample it."""

    name: str
    values: tuple[Value, ...] | None
    distribution: str | None = None
    low: float = 0.0
    high: float = 0.0

    def sample(self, rng: random.Random) -> Value:
        """Draw one value."""
        if self.values is not None:
            return rng.choice(self.values)
        if self.distribution == "int":
            return rng.randint(int(self.low), int(self.high))
        if self.distribution == "log":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


def _range(name: str, text: str) -> tuple[Value, ...]:
    parts = [_scalar(p) for p in text.split(":")]
    if len(parts) != 3 or not all(isinstance(p, int | float) and not isinstance(p, bool) for p in parts):
        raise SpaceError(f"{name}={text}: a range is start:stop:step with three numbers")
    start, stop, step = (float(p) if not isinstance(p, int) else p for p in parts)
    if step <= 0 or stop < start:
        raise SpaceError(f"{name}={text}: a range needs step > 0 and stop >= start")
    count = math.floor((stop - start) / step + 1e-9) + 1
    integral = all(isinstance(p, int) for p in parts)
    return tuple(start + i * step if integral else round(start + i * step, 12) for i in range(count))


def parse_param_spec(spec: str) -> Dimension:
    """Read one `name=values` spec (see the module docstring for the forms)."""
    name, sep, text = spec.partition("=")
    name, text = name.strip(), text.strip()
    if not sep or not name or not text:
        raise SpaceError(f"{spec!r}: expected NAME=VALUES, e.g. fast=5:50:5 or slow=30,50,100")
    kind, colon, rest = text.partition(":")
    if colon and kind in DISTRIBUTIONS:
        if kind == "cat":
            return Dimension(name, tuple(_scalar(v) for v in rest.split(",") if v), "cat")
        bounds = rest.split(":")
        try:
            low, high = (float(b) for b in bounds)
        except ValueError:
            raise SpaceError(f"{spec}: {kind}:LOW:HIGH needs two numbers") from None
        if high < low or (kind == "log" and low <= 0):
            raise SpaceError(f"{spec}: needs LOW <= HIGH{' and LOW > 0' if kind == 'log' else ''}")
        return Dimension(name, None, kind, low, high)
    if ":" in text:
        return Dimension(name, _range(name, text))
    return Dimension(name, tuple(_scalar(v) for v in text.split(",") if v.strip()))


@dataclass(frozen=True, slots=True)
class ParamSpace:
    """The parameters searched, in the order given."""

    dimensions: tuple[Dimension, ...]

    @classmethod
    def parse(cls, specs: list[str]) -> ParamSpace:
        """Read repeated `--grid` specs; a parameter named twice is an error."""
        dims = tuple(parse_param_spec(s) for s in specs)
        names = [d.name for d in dims]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise SpaceError(f"parameter {', '.join(repeated)} given more than once")
        if not dims:
            raise SpaceError("no parameter to search: give at least one --grid NAME=VALUES")
        return cls(dims)

    def grid(self) -> Iterator[dict[str, Value]]:
        """Every combination, the last parameter varying fastest."""
        continuous = [d.name for d in self.dimensions if d.values is None]
        if continuous:
            raise SpaceError(f"grid search needs lists or ranges; {', '.join(continuous)} is a distribution")
        names = [d.name for d in self.dimensions]
        for combo in itertools.product(*(d.values or () for d in self.dimensions)):
            yield dict(zip(names, combo, strict=True))

    def grid_size(self) -> int:
        """How many combinations `grid` yields (0 with a distribution)."""
        return math.prod(len(d.values) if d.values is not None else 0 for d in self.dimensions)

    def sample(self, rng: random.Random, count: int) -> list[dict[str, Value]]:
        """`count` independent draws (repeats possible, as in any random search)."""
        return [{d.name: d.sample(rng) for d in self.dimensions} for _ in range(count)]
