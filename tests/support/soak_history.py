"""The soak with partitioned history and retention (`python -m bench.soak --partition-interval 5m
--retention-minutes 15`): the settings, the database's size sampled while the stream runs, and
the check that retention dropped no open delivery.

`Retention` is the pipeline's settings: ETHHOOK_PARTITION_INTERVAL, ETHHOOK_RETENTION_DAYS and a
retry schedule that fits in half the retention (every process refuses to start with a schedule
longer than the retention). Beat makes partitions ahead and runs retention once an interval.

`HistoryWatch` samples, every `every_s` on a connection of its own: pg_database_size, the total
size of the three history tables' partitions and how many there are, the waiting or pending
deliveries, and which of them are in partitions that age past retention within an interval
("at risk": its event's time is older than now − retention + one interval). At the end, every
delivery ever seen at risk must have reached the receiver or still be in the database: one that
did neither was dropped while open. The partitions seen over the run and those left give the
partitions made and dropped; beat's log gives its retention runs' drops and holds.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from ethhook.config import parse_partition_interval
from ethhook.db.partition_plan import Span
from ethhook.db.partitions import read_partitions

# Delays of the retry schedule, first to last; a soak takes those that add up to half its
# retention at most (the product's default schedule adds up to 1.15 days).
RETRY_STEPS_S = (0, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# The bar for "flat": each size over the last half of the stream within ±15 % of its mean.
FLAT_PCT = 15.0
MB = 2**20


@dataclass(frozen=True)
class Retention:
    interval: str  # as ETHHOOK_PARTITION_INTERVAL: "5m"
    interval_s: int
    retention_s: float
    retry_schedule_s: tuple[int, ...]

    @classmethod
    def of(cls, interval: str, retention_minutes: float) -> Retention:
        retention_s = retention_minutes * 60
        return cls(interval, parse_partition_interval(interval), retention_s,
                   fitting_schedule(retention_s))  # fmt: skip

    def settings(self) -> dict[str, str]:
        return {
            "ETHHOOK_PARTITION_INTERVAL": self.interval,
            "ETHHOOK_RETENTION_DAYS": repr(self.retention_s / 86400),
            "ETHHOOK_RETRY_SCHEDULE_S": ",".join(str(d) for d in self.retry_schedule_s),
        }

    def partitions_bound(self) -> int:
        """The most partitions the three tables may have while retention keeps up: per table,
        those within retention (one partly), one past it until the next run (once an interval),
        one more for an interval whose run a fault made fail or beat sent late (the next run
        drops both), the current one and the three ahead beat makes."""
        return 3 * (math.ceil(self.retention_s / self.interval_s) + 1 + 1 + 1 + 1 + 3)


def fitting_schedule(retention_s: float) -> tuple[int, ...]:
    """The RETRY_STEPS_S that add up to half `retention_s` at most (at least one attempt)."""
    schedule: list[int] = []
    for delay in RETRY_STEPS_S:
        if schedule and sum(schedule) + delay > retention_s / 2:
            break
        schedule.append(delay)
    return tuple(schedule)


_OPEN = "d.status IN ('waiting', 'pending')"
_OPEN_KEYS = (
    "SELECT lower(e.transaction_hash) AS tx, e.log_index"
    " FROM deliveries d JOIN events e ON e.id = d.event_id AND e.event_at = d.event_at"
    f" WHERE {_OPEN}"
)
_AT_RISK = text(f"{_OPEN_KEYS} AND d.event_at < now() - make_interval(secs => :past_s)")


@dataclass
class HistoryWatch:
    url: str
    retention: Retention
    every_s: float = 30.0
    samples: list[dict[str, Any]] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)  # samples the database refused
    seen: dict[str, Span] = field(default_factory=dict)  # every partition seen → its range
    at_start: set[str] = field(default_factory=set)
    present: set[str] = field(default_factory=set)
    # (transaction hash, log index) → when first seen open in a partition at risk
    at_risk: dict[tuple[str, int], float] = field(default_factory=dict)
    engine: Engine | None = None

    def __post_init__(self) -> None:
        self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=1, max_overflow=0)

    def sample(self, t_s: float) -> dict[str, Any] | None:
        """One sample of the sizes (None when the database did not answer: a fault)."""
        assert self.engine is not None
        past_s = self.retention.retention_s - self.retention.interval_s
        try:
            with self.engine.connect() as conn, conn.begin():
                conn.execute(text("SET LOCAL statement_timeout = '10s'"))
                database = conn.scalar(text("SELECT pg_database_size(current_database())"))
                partitions = read_partitions(conn)
                open_now = conn.scalar(text(f"SELECT count(*) FROM deliveries d WHERE {_OPEN}"))
                at_risk = conn.execute(_AT_RISK, {"past_s": past_s}).all()
        except DBAPIError as exc:
            self.missed.append({"t_s": round(t_s), "error": str(exc.orig).splitlines()[0]})
            return None
        names = {p.name for p in partitions}
        if not self.samples:
            self.at_start = set(names)
        self.present = names
        self.seen.update({p.name: p.span for p in partitions})
        for row in at_risk:
            self.at_risk.setdefault((row.tx, row.log_index), t_s)
        sample = {
            "t_s": round(t_s),
            "database_mb": round(database / MB, 2),
            "history_mb": round(sum(p.bytes or 0 for p in partitions) / MB, 2),
            "partitions": len(partitions),
            "dropped_so_far": len(set(self.seen) - names),
            "open_deliveries": open_now,
            "open_at_risk": len(at_risk),
        }
        self.samples.append(sample)
        return sample

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    def end_state(self) -> dict[str, Any]:
        """After the run settled: open and failed deliveries, rows left in each table."""
        assert self.engine is not None
        with self.engine.connect() as conn:
            statuses = dict(
                conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status")).all()
            )
            rows = {
                table: conn.scalar(text(f"SELECT count(*) FROM {table}"))
                for table in ("events", "deliveries", "delivery_attempts")
            }
        return {"deliveries_by_status": statuses, "rows": rows}

    def report(
        self,
        arrived: set[tuple[str, int]],
        stream_from: datetime,
        stream_s: float,
        beat_log: str,
    ) -> dict[str, Any]:
        """The history part of the soak's report (`arrived`: events whose webhook arrived; the
        stream ran `stream_s` from `stream_from`, in UTC)."""
        end = self.end_state()
        open_keys = self._open_keys()
        dropped_open = sorted(k for k in self.at_risk if k not in arrived and k not in open_keys)
        dropped = set(self.seen) - self.present
        return {
            "partition_interval": self.retention.interval,
            "retention_s": self.retention.retention_s,
            "retry_schedule_s": list(self.retention.retry_schedule_s),
            "sample_every_s": self.every_s,
            "partitions_at_start": len(self.at_start),
            "partitions_made": len(set(self.seen) - self.at_start),
            "partitions_dropped": len(dropped),
            "partitions_at_end": len(self.present),
            "data_partitions_dropped": self.stream_partitions_dropped(stream_from, stream_s),
            "partitions_bound": self.retention.partitions_bound(),
            "first_drop_s": next((s["t_s"] for s in self.samples if s["dropped_so_far"]), None),
            "open_deliveries_at_end": sum(
                n for s, n in end["deliveries_by_status"].items() if s in ("waiting", "pending")
            ),
            "failed_deliveries_at_end": end["deliveries_by_status"].get("failed", 0),
            "rows_at_end": end["rows"],
            "open_at_risk_seen": len(self.at_risk),
            "open_at_risk_delivered": sum(1 for k in self.at_risk if k in arrived),
            "open_dropped": len(dropped_open),
            "open_dropped_examples": [list(k) for k in dropped_open[:10]],
            "retention_log": retention_log(beat_log),
            "sizes": size_summary(self.samples, stream_s, max(60, self.retention.interval_s)),
            "size_samples": self.samples,
            "samples_missed": self.missed,
        }

    def stream_partitions_dropped(self, stream_from: datetime, stream_s: float) -> int:
        """How many dropped partitions covered some of the stream's time (as sampled so far)."""
        stream = Span(stream_from, stream_from + timedelta(seconds=stream_s))
        return self._data_partitions(set(self.seen) - self.present, stream)

    def _open_keys(self) -> set[tuple[str, int]]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            rows = conn.execute(text(_OPEN_KEYS)).all()
        return {(row.tx, row.log_index) for row in rows}

    def _data_partitions(self, names: set[str], stream: Span) -> int:
        """How many of these partitions cover some of the stream's time (each of its intervals
        holds events, deliveries and attempts)."""
        return sum(1 for name in names if self.seen[name].overlaps(stream))


_DROPPED = re.compile(r"maintenance\.retention\.dropped partition=(\S+)")
_DONE = re.compile(r"maintenance\.retention\.done dropped=(\d+) held=(\d+)")
_HELD = re.compile(r"held:(\S+?)='([^']*)'")


def retention_log(beat_log: str) -> dict[str, Any]:
    """What beat's retention runs said: partitions dropped, runs that kept some past retention
    (and which, and why), partitions attached again after a row arrived during the detach."""
    held_runs = [m for m in _DONE.finditer(beat_log) if int(m[2]) > 0]
    held = sorted({f"{m[1]}: {m[2]}" for m in _HELD.finditer(beat_log)})
    return {
        "dropped": len(_DROPPED.findall(beat_log)),
        "runs_with_held": len(held_runs),
        "held": held[:20],
        "reattached": beat_log.count("maintenance.retention.reattached"),
        "busy": beat_log.count("maintenance.retention.busy"),
    }


def size_summary(samples: list[dict[str, Any]], stream_s: float, bucket_s: int) -> dict:
    """Per `bucket_s` of the stream: the mean, min and max of the sizes and of the partitions;
    over its last half: each size's min and max relative to its mean, and whether both stay
    within ±FLAT_PCT."""
    during = [s for s in samples if s["t_s"] <= stream_s + 1]
    buckets = []
    for start in range(0, int(stream_s) + 1, bucket_s):
        inside = [s for s in during if start <= s["t_s"] < start + bucket_s]
        if inside:
            buckets.append({"from_s": start, "to_s": start + bucket_s,
                            **_stats(inside, "database_mb"), **_stats(inside, "history_mb"),
                            "partitions_max": max(s["partitions"] for s in inside)})  # fmt: skip
    last_half = [s for s in during if s["t_s"] >= stream_s / 2]
    summary: dict[str, Any] = {"bucket_s": bucket_s, "buckets": buckets,
                               "last_half_samples": len(last_half)}  # fmt: skip
    for key in ("database_mb", "history_mb"):
        values = [s[key] for s in last_half]
        if values:
            mean = statistics.fmean(values)
            low, high = 100 * (min(values) / mean - 1), 100 * (max(values) / mean - 1)
            summary[key] = {"mean": round(mean, 1), "min": min(values), "max": max(values),
                            "min_pct": round(low, 1), "max_pct": round(high, 1),
                            "flat": -FLAT_PCT <= low and high <= FLAT_PCT}  # fmt: skip
    return summary


def _stats(samples: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [s[key] for s in samples]
    short = key.removesuffix("_mb")
    return {f"{short}_mean_mb": round(statistics.fmean(values), 1),
            f"{short}_min_mb": min(values), f"{short}_max_mb": max(values)}  # fmt: skip


def summary_lines(history: dict[str, Any]) -> list[str]:
    """The history part of the summary for people."""
    sizes, log = history["sizes"], history["retention_log"]
    lines = [
        f"  history: partitions of {history['partition_interval']}, retention "
        f"{history['retention_s'] / 60:g} min, retry schedule {history['retry_schedule_s']} s; "
        f"partitions at start {history['partitions_at_start']}, made "
        f"{history['partitions_made']}, dropped {history['partitions_dropped']} "
        f"({history['data_partitions_dropped']} within the stream's time; beat's log: "
        f"{log['dropped']}), at end {history['partitions_at_end']} "
        f"(bound {history['partitions_bound']}); the first drop seen at "
        f"{history['first_drop_s']} s",
        f"  open deliveries at the end {history['open_deliveries_at_end']}, failed "
        f"{history['failed_deliveries_at_end']}; seen open in a partition aging past retention "
        f"{history['open_at_risk_seen']} (delivered {history['open_at_risk_delivered']}), "
        f"DROPPED OPEN {history['open_dropped']}; retention runs that held partitions "
        f"{log['runs_with_held']} {log['held'][:3]}, attached again {log['reattached']}",
        f"  rows left at the end {history['rows_at_end']}; samples the database missed "
        f"{len(history['samples_missed'])}",
        f"  size every {history['sample_every_s']:g} s, per {sizes['bucket_s'] // 60} min "
        "(database / history tables, mean [min–max] MB, partitions at most):",
        *(f"    {b['from_s'] // 60:3d}–{b['to_s'] // 60:<3d} min  {b['database_mean_mb']:8.1f} "
          f"[{b['database_min_mb']:.1f}–{b['database_max_mb']:.1f}]  {b['history_mean_mb']:8.1f} "
          f"[{b['history_min_mb']:.1f}–{b['history_max_mb']:.1f}]  {b['partitions_max']}"
          for b in sizes["buckets"]),
    ]  # fmt: skip
    for key in ("database_mb", "history_mb"):
        if key in sizes:
            s = sizes[key]
            lines.append(
                f"  {key.removesuffix('_mb')} over the last half ({sizes['last_half_samples']} "
                f"samples): mean {s['mean']} MB, min {s['min_pct']:+.1f} %, max "
                f"{s['max_pct']:+.1f} %: {'FLAT' if s['flat'] else 'NOT FLAT'} "
                f"(±{FLAT_PCT:g} %)"
            )
    return lines
