"""``type=`` functions for argparse options that take numbers: a value out of range (negative,
zero, nan, inf) is refused by the parser, with the option's usage, before anything starts."""

import argparse
import math

__all__ = ["positive_float", "positive_int", "non_negative_int", "port_number"]


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _whole(text: str, low: int, what: str) -> int:
    """A whole number >= low, also written as 1e8."""
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number == int(number) and number >= low):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return int(number)


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return _whole(text, 1, "a whole number >= 1")


def non_negative_int(text: str) -> int:
    """A whole number >= 0."""
    return _whole(text, 0, "a whole number >= 0")


def port_number(text: str) -> int:
    """A TCP port, 0 to 65535 (0: any free port)."""
    value = _whole(text, 0, "a port from 0 to 65535 (0: any free port)")
    if value > 65535:
        raise argparse.ArgumentTypeError(
            f"expected a port from 0 to 65535 (0: any free port), got {text!r}"
        )
    return value
