"""Atomic writes for the pipeline's outputs: cnn.atomic's helpers plus text and JSON writers."""

import json
import os
from typing import Any

from cnn.atomic import NO_SPACE, atomic_open, atomic_path

__all__ = ["NO_SPACE", "atomic_open", "atomic_path", "write_json", "write_text"]


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_open(target, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_json(target: str | os.PathLike, data: Any) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=False) + "\n")
