"""The deliveries-per-minute chart: bar geometry for an inline SVG, computed here, drawn by the
template (no chart library, no script)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ethhook.service.stats import MinuteCount

WIDTH = 960
HEIGHT = 220
LEFT = 44  # room for the y-axis labels
BOTTOM = 24  # room for the time labels
TOP = 8


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float
    title: str  # the tooltip: the minute and its counts


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    plot_bottom: float
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    total: int
    failed: int


def nice_ceiling(value: int) -> int:
    """The axis maximum: 1, 2 or 5 times a power of ten, at least `value` (and at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # unreachable: 10 × power ≥ value


def minute_chart(minutes: Sequence[MinuteCount], label_every: int = 10) -> Chart:
    """Stacked bars (succeeded below, failed above), one per minute, oldest on the left."""
    plot_width = WIDTH - LEFT
    plot_height = HEIGHT - TOP - BOTTOM
    plot_bottom = float(HEIGHT - BOTTOM)
    top = nice_ceiling(max((m.attempts for m in minutes), default=0))
    slot = plot_width / max(1, len(minutes))
    scale = plot_height / top
    bars = []
    x_ticks = []
    for i, m in enumerate(minutes):
        x = LEFT + i * slot
        ok_height = m.succeeded * scale
        failed_height = m.failed * scale
        bars.append(
            Bar(
                x=round(x + slot * 0.1, 2),
                width=round(max(1.0, slot * 0.8), 2),
                ok_y=round(plot_bottom - ok_height, 2),
                ok_height=round(ok_height, 2),
                failed_y=round(plot_bottom - ok_height - failed_height, 2),
                failed_height=round(failed_height, 2),
                title=f"{m.start:%H:%M} UTC: {m.succeeded} succeeded, {m.failed} failed",
            )
        )
        if m.start.minute % label_every == 0:
            x_ticks.append(Tick(round(x + slot / 2, 2), f"{m.start:%H:%M}"))
    values = (0, top // 2, top) if top % 2 == 0 else (0, top)
    y_ticks = [Tick(round(plot_bottom - v * scale, 2), f"{v:,}") for v in values]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        plot_bottom=plot_bottom,
        bars=bars,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        total=sum(m.attempts for m in minutes),
        failed=sum(m.failed for m in minutes),
    )
