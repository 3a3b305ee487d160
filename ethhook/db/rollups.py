"""Delivery rollups: per endpoint, per minute, hour and day, what the attempts recorded came to."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, Table

from ethhook.db.base import Base, UTCDateTime

# Upper bounds (ms) of the attempt-duration buckets that delivery_rollups counts, Prometheus-style;
# a last, unbounded bucket holds the rest. Changing them needs a migration (one column each).
LATENCY_BOUNDS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
LATENCY_COLUMNS = tuple(f"latency_{b}ms" for b in LATENCY_BOUNDS_MS) + ("latency_inf",)
# What an attempt adds to its rollup rows besides one latency bucket, in column order.
ROLLUP_COUNTS = (
    "attempts",
    "succeeded",  # answered 2xx
    "client_errors",  # answered 4xx
    "server_errors",  # answered 5xx
    "no_response",  # timed out, or the connection failed or was refused
    "dead_lettered",  # the attempt that gave the delivery up (status failed)
)
ROLLUP_MINUTE_S = 60
ROLLUP_HOUR_S = 3600
ROLLUP_DAY_S = 86400  # UTC days
ROLLUP_PERIODS_S = (ROLLUP_MINUTE_S, ROLLUP_HOUR_S, ROLLUP_DAY_S)

# Per endpoint, per minute, hour and day: what the attempts recorded in it came to. record()
# upserts the rows in the transaction that writes the attempts; statistics read only this table
# (coarser rows spare reading the finer ones: a week is ~90 rows per endpoint, not 10,080).
# A latency column counts the attempts that took longer than the previous bound, up to its own.
delivery_rollups = Table(
    "delivery_rollups",
    Base.metadata,
    Column(
        "endpoint_id",
        Integer,
        ForeignKey("endpoints.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("period_s", Integer, primary_key=True, autoincrement=False),  # ROLLUP_PERIODS_S
    Column("period_start", UTCDateTime(), primary_key=True),
    *(Column(name, Integer, nullable=False) for name in ROLLUP_COUNTS),
    Column("duration_ms_total", Float, nullable=False),
    *(Column(name, Integer, nullable=False) for name in LATENCY_COLUMNS),
    # Statistics and cleanup read a time range across every endpoint.
    Index(None, "period_s", "period_start"),
)


def latency_column(duration_ms: float) -> str:
    """The delivery_rollups column that counts an attempt of this duration."""
    for bound, column in zip(LATENCY_BOUNDS_MS, LATENCY_COLUMNS, strict=False):
        if duration_ms <= bound:
            return column
    return LATENCY_COLUMNS[-1]
