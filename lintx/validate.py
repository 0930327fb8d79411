"""Type checks for notebook parameters: papermill's ``-p`` passes ``[0, 1]`` as the string ``"[0, 1]"``,
which would otherwise be iterated character by character. Lists are passed with ``-y``."""

from __future__ import annotations

import numbers

_HINT = "pass lists to papermill with -y, e.g. -y 'seeds: [0, 1]'"


def int_list(name: str, value, minimum: int = 0) -> list[int]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{name} must be a non-empty list of integers, got {value!r} ({_HINT})")
    if min(value) < minimum:
        raise ValueError(f"{name} must be integers >= {minimum}, got {value!r}")
    return [int(v) for v in value]


def number_list(name: str, value) -> list[float]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{name} must be a non-empty list of numbers, got {value!r} ({_HINT})")
    return [float(v) for v in value]


def str_list(name: str, value) -> list[str]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{name} must be a non-empty list of strings, got {value!r} ({_HINT})")
    return list(value)
