"""What a run reports: the result object, the summary table, progress bars and log lines."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from python_jobs.features.registry import Family
from python_jobs.log import get_logger

log = get_logger(__name__)


# The phases of a run whose wall seconds a result reports, in order. ``write`` is the writer
# thread's busy time (it overlaps compute); ``write_wait`` the time the run waited for it.
PHASES = ("setup", "tables", "plan", "read", "compute", "write", "write_wait", "finish")


def phase_seconds() -> dict[str, float]:
    """Zeroed wall seconds per phase, for :attr:`JobResult.seconds_per_phase`."""
    return dict.fromkeys(PHASES, 0.0)


@dataclass(frozen=True)
class SeriesError:
    loto: str
    unique_id: str
    family: str
    error: str


@dataclass
class JobResult:
    """What one run did. ``summary()`` is the table printed at the end of a run."""

    run_id: str
    status: str
    device: str
    scheduler: str
    families: list[str]
    feature_version: str
    series_total: int = 0
    series_computed: int = 0
    # Snapshots of py_features_stat_history the stat families were computed on.
    snapshots_computed: int = 0
    computed_per_family: dict[str, int] = field(default_factory=dict)
    too_short_per_family: dict[str, int] = field(default_factory=dict)
    errors: list[SeriesError] = field(default_factory=list)
    rows_written: dict[str, int] = field(default_factory=dict)
    seconds_per_family: dict[str, float] = field(default_factory=dict)
    device_per_family: dict[str, str] = field(default_factory=dict)
    # Batches per family whose GPU call raised and that the CPU computed instead.
    gpu_failures_per_family: dict[str, int] = field(default_factory=dict)
    seconds_total: float = 0.0
    # Wall seconds of the run's phases (see PHASES); the families' own seconds are above.
    seconds_per_phase: dict[str, float] = field(default_factory=dict)

    @property
    def series_skipped(self) -> int:
        return self.series_total - self.series_computed

    @property
    def series_failed(self) -> int:
        return len({(e.loto, e.unique_id) for e in self.errors})

    @property
    def series_per_second(self) -> float:
        return self.series_computed / self.seconds_total if self.seconds_total > 0 else 0.0

    def summary(self) -> str:
        width = max([len("family"), *(len(name) for name in self.families)])
        lines = [
            f"feature job {self.run_id} ({self.status}): device {self.device}, scheduler {self.scheduler}",
            f"  {'family'.ljust(width)}  {'device':>6}  {'series':>7}  {'failed':>6}  "
            f"{'seconds':>8}  {'series/s':>9}",
        ]
        failed: dict[str, int] = {}
        for err in self.errors:
            failed[err.family] = failed.get(err.family, 0) + 1
        for name in self.families:
            n = self.computed_per_family.get(name, 0)
            secs = self.seconds_per_family.get(name, 0.0)
            rate = f"{n / secs:9.1f}" if secs > 0 and n else f"{'-':>9}"
            lines.append(
                f"  {name.ljust(width)}  {self.device_per_family.get(name, '-'):>6}  {n:7d}  "
                f"{failed.get(name, 0):6d}  {secs:8.2f}  {rate}"
            )
        rows = ", ".join(f"{table} {n:,}" for table, n in self.rows_written.items())
        lines.append(
            f"  series: {self.series_computed} computed, {self.series_skipped} unchanged, "
            f"{self.series_failed} with errors, of {self.series_total}; rows written: {rows or 'none'}"
        )
        gpu_failures = sum(self.gpu_failures_per_family.values())
        if gpu_failures:
            lines.append(
                f"  GPU failures: {gpu_failures} batch(es) computed on the CPU instead "
                "(job.gpu_batch_failed in the log names the family and the error)"
            )
        if self.snapshots_computed:
            lines.append(f"  stat snapshots computed: {self.snapshots_computed:,}")
        lines.append(f"  total {self.seconds_total:.2f} s, {self.series_per_second:.1f} series/s")
        if self.seconds_per_phase:
            phases = ", ".join(f"{name} {secs:.2f}" for name, secs in self.seconds_per_phase.items())
            lines.append(f"  wall seconds: {phases}")
        return "\n".join(lines)


class ProgressLog:
    """A ``job.progress`` log line at most every ``interval`` seconds."""

    def __init__(self, total: int, *, enabled: bool, interval: float = 30.0):
        self.total = total
        self.enabled = enabled
        self.interval = interval
        self.start = self.last = time.perf_counter()

    def tick(self, done: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < self.interval and done < self.total):
            return
        self.last = now
        elapsed = now - self.start
        log.info(
            "job.progress",
            series_done=done,
            series_to_compute=self.total,
            seconds=round(elapsed, 1),
            series_per_s=round(done / elapsed, 2) if elapsed > 0 else None,
        )


def progress_bars(fams: list[Family], totals: dict[str, int], enabled: bool) -> dict[str, Any]:
    from tqdm import tqdm

    show = enabled and sys.stderr.isatty()
    # A terminal without a size (a bare pty) reports 0 x 0, which tqdm renders as nothing.
    size = shutil.get_terminal_size((100, 24))
    return {
        fam.name: tqdm(
            total=totals.get(fam.name, 0),
            desc=fam.name,
            unit="series",
            position=i,
            leave=True,
            file=sys.stderr,
            disable=not show,
            ncols=size.columns,
            nrows=max(size.lines, len(fams) + 1),
        )
        for i, fam in enumerate(fams)
    }


def log_done(result: JobResult) -> None:
    """The closing log lines: one per family, then the run's totals."""
    for name in result.families:
        log.info(
            "job.family_done",
            family=name,
            series=result.computed_per_family[name],
            too_short=result.too_short_per_family[name],
            failed=sum(e.family == name for e in result.errors),
            seconds=round(result.seconds_per_family[name], 3),
            device=result.device_per_family[name],
            gpu_failures=result.gpu_failures_per_family.get(name, 0),
        )
    log.info(
        "job.done",
        run_id=result.run_id,
        series_computed=result.series_computed,
        series_total=result.series_total,
        rows_written=sum(result.rows_written.values()),
        seconds=round(result.seconds_total, 2),
    )
