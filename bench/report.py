"""Printing a benchmark's table (figure, target, verdict) and writing its JSON to bench/results/."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, ROOT, dump_json, machine_info


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of a list; None when it is empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Row:
    metric: str
    value: Any
    unit: str = ""
    target: str = ""
    ok: bool | None = None  # None: informational, no target


@dataclass
class Report:
    benchmark: str
    description: str
    rows: list[Row] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, metric: str, value: Any, unit: str = "", target: str = "", ok: bool | None = None) -> Row:
        row = Row(metric, value, unit, target, ok)
        self.rows.append(row)
        return row

    @property
    def passed(self) -> bool:
        return all(r.ok is not False for r in self.rows)

    def render(self) -> str:
        def fmt(value) -> str:
            if value is None:
                return "—"
            if isinstance(value, float):
                return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
            if isinstance(value, int):
                return f"{value:,}"
            return str(value)

        header = ("metric", "value", "target", "")
        lines = [(r.metric, f"{fmt(r.value)} {r.unit}".strip(), r.target,
                  "" if r.ok is None else ("ok" if r.ok else "MISSED")) for r in self.rows]
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
        out = [f"\n{self.benchmark}: {self.description}", ""]
        out.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        out.append("  ".join("-" * w for w in widths))
        for line in lines:
            out.append("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
        for note in self.notes:
            out.append(f"note: {note}")
        return "\n".join(out) + "\n"

    def save(self, machine: dict | None = None) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = RESULTS / f"{self.benchmark}-{stamp}.json"
        dump_json(path, {
            "benchmark": self.benchmark,
            "description": self.description,
            "machine": machine or machine_info(),
            "rows": [r.__dict__ for r in self.rows],
            "passed": self.passed,
            "notes": self.notes,
            "details": self.details,
        })
        return path

    def finish(self, machine_before: dict | None = None) -> int:
        """Print, save, and return the process exit code (0 even when a target is missed: the
        figures are the output; 1 only when the run itself was broken)."""
        machine = machine_info()
        if machine_before is not None:
            machine["load_avg_before"] = machine_before.get("load_avg")
        print(self.render(), flush=True)
        print(f"machine: {machine['cpu']}, {machine['cores']} cores, load {machine.get('load_avg_before')} → {machine['load_avg']}, "
              f"commit {machine['commit']}, {machine['date']}")
        path = self.save(machine)
        shown = Path(path).relative_to(ROOT) if Path(path).is_relative_to(ROOT) else path
        print(f"results: {shown}", flush=True)
        return 0
