"""Checks shared by the factories that read params-style specs (cnn.schedules, cnn.augment): each failure is a
ValueError of one line naming the key, what it got and what is allowed."""

import math
from typing import Any


def number(name: str, value: Any) -> float:
    """value if it is a finite int or float (not a bool), else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        hint = ""
        if isinstance(value, str):
            try:
                float(value)
                hint = f" (YAML reads {value} as text; write it with a dot, e.g. 1.0e-5)"
            except ValueError:
                pass
        raise ValueError(f"{name} must be a number, got {value!r}{hint}")
    return value


def no_unknown_keys(name: str, spec: dict[str, Any], allowed: tuple[str, ...], ignore: tuple[str, ...] = ()) -> None:
    """A ValueError naming the first key of spec (sorted) that is neither allowed nor ignored."""
    unknown = sorted(str(k) for k in spec if k not in allowed and k not in ignore)
    if unknown:
        raise ValueError(f"{name}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed) or 'none'}")
