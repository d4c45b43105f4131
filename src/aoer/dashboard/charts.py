"""Server-rendered SVG line charts for the console: geometry computed here, drawn by the
`chart` macro of `templates/charts.html` (no script needed, so they work under the page's CSP
and without JavaScript)."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

WIDTH: Final = 640
HEIGHT: Final = 200
PAD_LEFT: Final = 44
PAD_RIGHT: Final = 12
PAD_TOP: Final = 12
PAD_BOTTOM: Final = 26
X_TICKS: Final = 5
MAX_DOTS: Final = 48  # a series this short also gets a dot per point (one point is no line)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    css: str  # the line's class: colour and dash pattern, so series differ by more than colour
    points: Sequence[tuple[datetime, float]]


@dataclass(frozen=True, slots=True)
class Tick:
    at: float  # pixels along the axis
    label: str


@dataclass
class Chart:
    title: str
    description: str  # the chart's text alternative
    width: int = WIDTH
    height: int = HEIGHT
    lines: list[tuple[Series, str]] = field(default_factory=list)  # series, SVG path
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    dots: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # by series name
    empty: bool = True

    @property
    def plot_left(self) -> int:
        return PAD_LEFT

    @property
    def plot_right(self) -> int:
        return self.width - PAD_RIGHT

    @property
    def plot_bottom(self) -> int:
        return self.height - PAD_BOTTOM


def nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    start: datetime,
    end: datetime,
    unit: str,
    description: str,
) -> Chart:
    """Lines over [start, end]; the y axis from 0 to a round maximum, labelled in `unit`."""
    chart = Chart(title=title, description=description)
    span = max((end - start).total_seconds(), 1.0)
    top = nice_max(max((v for s in series for _, v in s.points), default=0.0))
    plot_w = chart.plot_right - chart.plot_left
    plot_h = chart.plot_bottom - PAD_TOP

    def x(moment: datetime) -> float:
        return chart.plot_left + (moment - start).total_seconds() / span * plot_w

    def y(value: float) -> float:
        return chart.plot_bottom - value / top * plot_h

    for s in series:
        if not s.points:
            continue
        chart.empty = False
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(v):.1f}" for i, (t, v) in enumerate(s.points)
        )
        chart.lines.append((s, path))
        if len(s.points) <= MAX_DOTS:
            chart.dots[s.name] = [(x(t), y(v)) for t, v in s.points]
    chart.y_ticks = [Tick(y(top * i / 2), f"{_number(top * i / 2)}{unit}") for i in range(3)]
    step = (end - start) / (X_TICKS - 1)
    chart.x_ticks = [
        Tick(x(start + step * i), (start + step * i).strftime("%H:%M")) for i in range(X_TICKS)
    ]
    return chart


def _number(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2g}" if value < 1 else f"{value:.1f}"


def per_minute(
    counts: Sequence[tuple[datetime, int]], start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    """Every minute of [start, end) with its count (0 where none finished), for a line that
    drops to zero instead of bridging quiet minutes."""
    by_minute = {t.replace(second=0, microsecond=0): n for t, n in counts}
    minute = start.replace(second=0, microsecond=0)
    points: list[tuple[datetime, float]] = []
    while minute < end:
        points.append((minute, float(by_minute.get(minute, 0))))
        minute += timedelta(minutes=1)
    return points
