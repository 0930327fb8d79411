"""Type checks for notebook parameters: papermill's ``-p`` passes ``[0, 1]`` as the string ``"[0, 1]"``,
which would otherwise be iterated character by character. Lists are passed with ``-y``."""

from __future__ import annotations

import numbers

_HINT = "pass lists to papermill with -y, e.g. -y 'seeds: [0, 1]'"


def int_list(name: str, value, minimum: int = 0, empty: bool = False) -> list[int]:
    if not isinstance(value, (list, tuple)) or (not value and not empty) or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{name} must be a {'' if empty else 'non-empty '}list of integers, got {value!r} ({_HINT})")
    if not value:
        return []
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


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def noise_labels(name: str, value) -> list[str]:
    """Noise settings by label (``u5``, ``c13``, ``f2``); a bad one is an error naming it."""
    from lintx.tasks import noise_from_label

    labels = str_list(name, value)
    for label in labels:
        noise_from_label(label)
    return labels


def variants(name: str, value) -> list[str]:
    from lintx.model import VARIANTS

    names = str_list(name, value)
    bad = [v for v in names if v not in VARIANTS]
    if bad:
        raise ValueError(f"unknown model variant(s) {bad} in {name}; expected some of {list(VARIANTS)}")
    return names


def sigma_points(points: int, top: float) -> list[float]:
    """``points`` evaluation noise levels evenly from 0 to ``top``: the same resolution in every panel."""
    points = positive_int("sigma_points", points)
    if points < 2:
        raise ValueError(f"sigma_points must be at least 2, got {points}")
    return [round(top * i / (points - 1), 6) for i in range(points)]


def sigma_grid(step: float, top: float) -> list[float]:
    """Evaluation noise levels ``0, step, ..., top`` for a per-variance profile."""
    if isinstance(step, bool) or not isinstance(step, numbers.Real) or not step > 0:
        raise ValueError(f"sigma step must be a number > 0, got {step!r}")
    count = int(round(top / step))
    return [round(i * step, 6) for i in range(count + 1)]


def flag(name: str, value) -> bool:
    """``True`` or ``False``; papermill's ``-p train_missing no`` passes the string ``"no"``, which would count as true."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r} (papermill: -p {name} False)")
    return value


def seed(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {type(value).__name__} {value!r}")
    return int(value)


def study(profile, seeds, extra_seeds, train_missing) -> tuple[list[int], list[int], bool]:
    """The parameters every figure notebook shares, checked before anything is trained: the training
    profile of a missing checkpoint, the seeds trained if missing, the seeds used where present, and
    whether to train what is missing. Returns ``(seeds, extra_seeds, train_missing)``."""
    from lintx.method import get_profile

    get_profile(profile)
    return int_list("seeds", seeds), int_list("extra_seeds", extra_seeds, empty=True), flag("train_missing", train_missing)


def shapes(name: str, value) -> list[tuple[int, int]]:
    """Problem sizes as ``["10x20", "5x10"]`` (``d`` x ``n``), each a pair of positive integers."""
    out = []
    for text in str_list(name, value):
        d, sep, n = text.partition("x")
        if not (sep and d.isdigit() and n.isdigit() and int(d) > 0 and int(n) > 0):
            raise ValueError(f"{name} must be sizes like '10x20' (d x n, positive integers), got {text!r}")
        out.append((int(d), int(n)))
    return out
