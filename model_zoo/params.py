"""Types and checks for config values: the schema of every key is a type annotation.

A model's constructor signature *is* its config schema: ``embedding_dim: PositiveInt = 64`` says the key exists, that
it takes an integer >= 1 and what the default is. The runner's own keys are declared the same way in
``model_zoo.config``. :func:`check_value` checks a YAML value against such an annotation and returns the problems in
words (no exception), so one error can list every problem of a config at once.

Supported annotations: ``int`` (never ``bool``), ``float`` (an int is accepted), ``bool``, ``str``, ``None``,
``Optional``/``Union``, ``Literal[...]``, ``Tuple[X, ...]`` / ``Sequence[X]`` / ``List[X]`` (a YAML list),
``Dict[str, X]`` / ``Mapping[str, X]``, and ``Annotated[X, Range(...)]`` / ``Annotated[X, Choices(...)]`` /
``Annotated[str, Pattern(...)]``.

Names that FuxiCTR would pass to ``eval``/``getattr`` (loss, optimizer, activations, metrics) are allow-lists here:
no config string ever reaches ``eval``.
"""
from __future__ import annotations

import collections.abc
import math
import re
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Dict, Literal, Optional, Tuple, Union

__all__ = ["Range", "Choices", "Pattern", "PositiveInt", "NonNegativeInt", "PositiveFloat", "NonNegativeFloat",
           "Probability", "DropoutRate", "Units", "OptionalUnits", "Activation", "Optimizer", "Loss", "Metric",
           "Regularizer", "Name", "check_value", "describe", "coerce_value", "ACTIVATIONS", "OPTIMIZERS", "LOSSES",
           "METRICS", "annotations_of", "check_choice"]


@dataclass(frozen=True)
class Range:
    """Numeric bounds of an ``Annotated`` int/float; ``None`` = unbounded; ``*_open`` excludes the bound."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: float) -> Optional[str]:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return self.text()
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return self.text()
        return None

    def text(self) -> str:
        lo = "" if self.low is None else f"{'>' if self.low_open else '>='} {_num(self.low)}"
        hi = "" if self.high is None else f"{'<' if self.high_open else '<='} {_num(self.high)}"
        return " and ".join(p for p in (lo, hi) if p)


@dataclass(frozen=True)
class Choices:
    """An allow-list of strings for an ``Annotated[str, ...]``, optionally case-insensitive."""

    values: Tuple[str, ...]
    case_sensitive: bool = True

    def problem(self, value: str) -> Optional[str]:
        allowed = self.values if self.case_sensitive else tuple(v.lower() for v in self.values)
        probe = value if self.case_sensitive else value.lower()
        return None if probe in allowed else f"one of {self.values}"


@dataclass(frozen=True)
class Pattern:
    """A regular expression a string must match in full, with a description for messages."""

    regex: str
    description: str

    def problem(self, value: str) -> Optional[str]:
        return None if re.fullmatch(self.regex, value) else self.description


def check_choice(key: str, value: object, allowed: Tuple[Any, ...]) -> None:
    """Raise ConfigError (a ValueError) naming ``key``, ``value`` and the ``allowed`` set unless value is allowed."""
    if value not in allowed:
        from model_zoo.errors import ConfigError, did_you_mean
        raise ConfigError(f"{key}={value!r}; " f"expected one of {tuple(allowed)}"
                          f"{did_you_mean(str(value), [str(a) for a in allowed])}")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


PositiveInt = Annotated[int, Range(low=1)]
NonNegativeInt = Annotated[int, Range(low=0)]
PositiveFloat = Annotated[float, Range(low=0, low_open=True)]
NonNegativeFloat = Annotated[float, Range(low=0)]
Probability = Annotated[float, Range(0, 1)]
DropoutRate = Annotated[float, Range(0, 1, high_open=True)]
Units = Tuple[PositiveInt, ...]                   # hidden layer sizes, e.g. [256, 128]
OptionalUnits = Optional[Tuple[PositiveInt, ...]]

# What fuxictr.pytorch.torch_utils.get_activation resolves without getattr on arbitrary names.
ACTIVATIONS = ("ReLU", "relu", "Sigmoid", "sigmoid", "Tanh", "tanh", "PReLU", "prelu", "Dice", "dice", "LeakyReLU",
               "GELU", "ELU", "SELU", "SiLU")
OPTIMIZERS = ("adam", "Adam", "AdamW", "SGD", "Adagrad", "RMSprop")          # getattr(torch.optim, name)
LOSSES = ("binary_crossentropy", "binary_cross_entropy", "bce")             # fuxictr get_loss aliases of BCE
METRICS = ("AUC", "logloss", "gAUC", "avgAUC", "MRR")                       # plus NDCG(k=N), checked by pattern
_NDCG = r"NDCG\(k=[1-9][0-9]{0,3}\)"

Activation = Annotated[str, Choices(ACTIVATIONS)]
Optimizer = Annotated[str, Choices(OPTIMIZERS)]
Loss = Annotated[str, Choices(LOSSES)]
Metric = Annotated[str, Pattern("(" + "|".join(METRICS) + "|" + _NDCG + ")",
                                f"one of {METRICS} or NDCG(k=N)")]
# FuxiCTR's regularizer forms, parsed by it without eval: a float (L2), "l1(x)", "l2(x)", "l1_l2(x, y)".
_FLOAT = r"\s*[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?\s*"
Regularizer = Union[NonNegativeFloat, Annotated[str, Pattern(
    rf"l[12]\({_FLOAT}\)|l1_l2\({_FLOAT},{_FLOAT}\)", "a number >= 0, 'l1(x)', 'l2(x)' or 'l1_l2(x, y)'")]]
# Names that become file or directory names (expids, dataset ids): no path separators, no "..".
Name = Annotated[str, Pattern(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}", "a name of letters, digits, '_', '.', '+', "
                              "'-' starting with a letter or digit (no path separators)")]


def _strip(annotation: Any) -> Tuple[Any, Tuple[Any, ...]]:
    """(bare type, Annotated metadata)."""
    if typing.get_origin(annotation) is Annotated:
        args = typing.get_args(annotation)
        return args[0], tuple(args[1:])
    return annotation, ()


def describe(annotation: Any) -> str:
    """Human words for an annotation, e.g. 'an integer >= 1' or 'a list of integers >= 1'."""
    bare, meta = _strip(annotation)
    extra = [m.text() if isinstance(m, Range) else m.problem("\0") if isinstance(m, (Choices, Pattern)) else None
             for m in meta]
    extra_text = " ".join(e for e in extra if e)
    origin, args = typing.get_origin(bare), typing.get_args(bare)
    if bare is bool:
        return "true or false"
    if bare is int:
        return f"an integer {extra_text}".strip()
    if bare is float:
        return f"a number {extra_text}".strip()
    if bare is str:
        return extra_text if extra_text else "a string"
    if bare is type(None):
        return "null"
    if origin is Literal:
        return f"one of {args}"
    if origin is Union:
        return " or ".join(describe(a) for a in args)
    if origin in (tuple, list, collections.abc.Sequence):
        item = args[0] if args else Any
        return f"a list of ({describe(item)})"
    if origin in (dict, collections.abc.Mapping):
        return f"a mapping of names to ({describe(args[1])})" if len(args) == 2 else "a mapping"
    if bare is Any:
        return "any value"
    return getattr(bare, "__name__", str(bare))


def check_value(value: Any, annotation: Any) -> Optional[str]:
    """None when ``value`` fits ``annotation``; otherwise what was expected, in words."""
    bare, meta = _strip(annotation)
    origin, args = typing.get_origin(bare), typing.get_args(bare)
    if bare is Any:
        return None
    if origin is Union:
        return None if any(check_value(value, a) is None for a in args) else describe(annotation)
    if bare is type(None):
        return None if value is None else "null"
    if origin is Literal:
        return None if any(value == a and type(value) is type(a) for a in args) else describe(annotation)
    if bare is bool:
        return None if isinstance(value, bool) else describe(annotation)
    if bare is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return describe(annotation)
    elif bare is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return describe(annotation)
    elif bare is str:
        if not isinstance(value, str):
            return describe(annotation)
    elif origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return describe(annotation)
        item = args[0] if args else Any
        bad = [i for i, v in enumerate(value) if check_value(v, item) is not None]
        if bad:
            return f"{describe(annotation)} (item {bad[0]} is {value[bad[0]]!r})"
    elif origin in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            return describe(annotation)
        if len(args) == 2:
            for k, v in value.items():
                if check_value(k, args[0]) is not None or check_value(v, args[1]) is not None:
                    return f"{describe(annotation)} (entry {k!r}: {v!r})"
    elif isinstance(bare, type):  # e.g. a class no YAML value can be
        if not isinstance(value, bare):
            return describe(annotation)
    for m in meta:
        problem = m.problem(value)
        if problem:
            return describe(annotation)
    return None


def coerce_value(value: Any, annotation: Any) -> Any:
    """A checked value in the form the code expects: ints where floats are declared become floats (FuxiCTR ignores
    an integer regularizer), YAML lists where tuples are declared become tuples."""
    bare, _ = _strip(annotation)
    origin, args = typing.get_origin(bare), typing.get_args(bare)
    if origin is Union:
        for a in args:
            if check_value(value, a) is None:
                return coerce_value(value, a)
        return value
    if bare is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin is tuple and isinstance(value, list):
        item = args[0] if args else Any
        return tuple(coerce_value(v, item) for v in value)
    return value


def annotations_of(func: Any) -> Dict[str, Any]:
    """Resolved annotations of a function, ``Annotated`` metadata kept."""
    return typing.get_type_hints(func, include_extras=True)

