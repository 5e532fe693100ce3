"""Options shared by the benchmarks (set from bench/run.py's command line)."""

from __future__ import annotations


class Options:
    __slots__ = ("quick", "runs")

    def __init__(self, *, quick: bool = False, runs: int | None = None) -> None:
        self.quick = quick
        self.runs = runs    # overrides each benchmark's repetition count when set

    def pick(self, *, quick: int, full: int) -> int:
        return quick if self.quick else full

    def pick_list(self, *, quick: list[int], full: list[int]) -> list[int]:
        return quick if self.quick else full
