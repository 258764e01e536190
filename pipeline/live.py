"""Live training metrics: the per-epoch table rewritten after every epoch, so `dvc plots show` (or an editor's
DVC view) shows a run while it trains. Each write is atomic: a reader sees the previous epoch or this one."""

import os
from typing import Any

import pandas as pd

from pipeline import tables


class EpochLog:
    """Appends one row per epoch record to a CSV and rewrites the whole file after each epoch. A column a
    record lacks is left empty (val_loss without a validation split), so every run's file has the same
    columns and one chart definition fits all. Starts with an empty table, so a file left by an earlier run
    never shows as this run's."""

    COLUMNS = ("epoch", "loss", "val_loss", "val_accuracy")

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        tables.write_csv(pd.DataFrame(columns=list(self.COLUMNS)), path)

    def __call__(self, record: dict[str, Any]) -> None:
        self.rows.append({column: record.get(column) for column in self.COLUMNS})
        tables.write_csv(pd.DataFrame(self.rows, columns=list(self.COLUMNS)), self.path)
