"""``keras.utils.Progbar``: the progress bar that ``fit`` prints, as Keras 2.2.4 draws it.

One difference, on purpose: Keras redraws the bar with carriage returns whenever it thinks it
writes to a console (TF 1.x's tf.keras even assumed so on every POSIX system), which fills CI
logs with thousands of half-drawn bars. Here the bar is redrawn in place only on a terminal
(``sys.stdout.isatty()``) or in a Jupyter kernel; elsewhere each bar is written once, complete,
when it finishes, so a log holds one readable line per epoch.
"""
from __future__ import annotations

import sys
import time
from typing import Dict, Iterable, List, Optional, Tuple, Union

import numpy as np

Values = Union[Iterable[Tuple[str, object]], Dict[str, object], None]


def dynamic_display() -> bool:
    """True where the bar can be redrawn in place: a terminal, or an IPython/Jupyter kernel."""
    stdout = sys.stdout
    isatty = getattr(stdout, "isatty", None)
    try:
        on_terminal = bool(isatty()) if isatty is not None else False
    except ValueError:  # (a closed stream)
        on_terminal = False
    return on_terminal or "ipykernel" in sys.modules


def format_value(value: float) -> str:
    """A metric as Keras prints it: 4 decimals, or scientific notation for tiny values (where 4
    decimals would show 0.0000)."""
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def format_eta(seconds: float) -> str:
    if seconds > 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds > 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def format_time_per_unit(seconds: float, unit_name: str) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


class Progbar:
    """A progress bar over ``target`` units (samples or steps; ``None`` when unknown).

    ``values`` given to ``update``/``add`` are (name, value) pairs; each is averaged over the
    units seen, weighted by how many units the update advanced, except the names listed in
    ``stateful_metrics``, which already are running values and are shown as last given.
    ``verbose=1`` draws the bar, ``verbose=2`` prints one summary line at the end, 0 nothing.
    """

    def __init__(self, target: Optional[int], width: int = 30, verbose: int = 1, interval: float = 0.05,
                 stateful_metrics: Optional[Iterable[str]] = None, unit_name: str = "step"):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics = set(stateful_metrics or ())
        self._dynamic_display = dynamic_display()
        self._total_width = 0
        self._seen_so_far = 0
        # name -> [sum of value * units, units] (averaged) or [value, 1] (stateful); insertion
        # order is the order the names are printed in.
        self._values: Dict[str, List] = {}
        self._start = time.time()
        self._last_update = 0.0
        self._finished = False

    def update(self, current: int, values: Values = None, finalize: Optional[bool] = None) -> None:
        """Advance to ``current`` units. ``finalize`` ends the bar (prints its last line); by
        default it ends when ``current`` reaches ``target``. An epoch that stops early, or has
        no known target, is ended by passing ``finalize=True``."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        if isinstance(values, dict):
            values = values.items()
        step = current - self._seen_so_far
        for name, value in values or ():
            if name in self.stateful_metrics:
                self._values[name] = [value, 1]
            elif name in self._values:
                self._values[name][0] += value * step
                self._values[name][1] += step
            else:
                self._values[name] = [value * step, step]
        self._seen_so_far = current

        if self._finished:
            return
        now = time.time()
        if self.verbose == 1:
            if not finalize and (not self._dynamic_display or now - self._last_update < self.interval):
                return
            self._draw(current, now, finalize)
        elif self.verbose == 2 and finalize:
            sys.stdout.write(f" - {now - self._start:.0f}s{self._metrics_text()}\n")
            sys.stdout.flush()
        self._last_update = now
        self._finished = finalize

    def add(self, n: int, values: Values = None) -> None:
        """Advance by ``n`` units."""
        self.update(self._seen_so_far + n, values)

    def _draw(self, current: int, now: float, finalize: bool) -> None:
        if self.target is not None:
            digits = len(str(max(int(self.target), 1)))
            bar = f"{current:{digits}d}/{self.target} ["
            progress_width = int(self.width * min(current / self.target, 1.0)) if self.target > 0 else self.width
            if progress_width > 0:
                bar += "=" * (progress_width - 1) + (">" if current < self.target else "=")
            bar += "." * (self.width - progress_width) + "]"
        else:
            bar = f"{current:7d}/Unknown"

        time_per_unit = (now - self._start) / current if current else 0.0
        if finalize:
            info = f" - {now - self._start:.0f}s {format_time_per_unit(time_per_unit, self.unit_name)}"
        elif self.target is not None:
            info = f" - ETA: {format_eta(time_per_unit * (self.target - current))}"
        else:
            info = f" - {now - self._start:.0f}s"
        line = bar + info + self._metrics_text()

        previous_width = self._total_width
        self._total_width = len(line)
        if self._dynamic_display:
            # Blank out the rest of a longer previous line, then end the bar's line.
            line = "\r" + line + " " * max(previous_width - len(line), 0)
        sys.stdout.write(line + ("\n" if finalize else ""))
        sys.stdout.flush()

    def _metrics_text(self) -> str:
        text = ""
        for name, (total, count) in self._values.items():
            average = float(np.mean(total / max(1, count)))
            text += f" - {name}: {format_value(average)}"
        return text
