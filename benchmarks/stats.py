"""Summaries of interleaved rounds: how steady one variant was, and how two variants compare."""

import statistics


def spread(rates: list[float]) -> float:
    """How far apart the rounds of one variant are: (fastest - slowest) / median."""
    return (max(rates) - min(rates)) / statistics.median(rates)


def by_variant(results: list[dict]) -> dict[tuple[str, str, int, str], dict]:
    """Result rows by (impl, network, batch_size, dtype)."""
    return {(r["impl"], r["network"], r["batch_size"], r["dtype"]): r for r in results}


def median_ratio(rates_a: list[float], rates_b: list[float]) -> float:
    """a's speed over b's from rounds that timed both: the median over rounds of a's rate over b's in the same
    round, so a machine that slows down or speeds up between rounds moves both sides of each ratio."""
    return statistics.median(a / b for a, b in zip(rates_a, rates_b, strict=True))
