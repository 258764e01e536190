"""Tables the pipeline writes and reads (loss per epoch, predictions, curves, per-class metrics), via pandas.

Floats are written with 12 significant digits: far more than any figure needs, and few enough that a
last-bit difference between two machines' math libraries does not change a tracked file.
"""

import os

import pandas as pd

from pipeline import atomic

SIGNIFICANT = 12
FLOAT_FORMAT = f"%.{SIGNIFICANT}g"


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write `frame` as CSV (header, no index, floats at 12 significant digits) atomically."""
    atomic.write_text(path, frame.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n"))


def fixed(value: float) -> float:
    """`value` rounded to 12 significant digits, for numbers written to tracked JSON files."""
    return float(f"{value:.{SIGNIFICANT}g}")
