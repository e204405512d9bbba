"""What people read of a comparison: the gap table, the gap chart, and the progress of a long run."""
from __future__ import annotations

import math
import re
from io import BytesIO
from pathlib import Path

from edgeopt.io import write_bytes

# Statuses that come without a solution to judge; any other result the referee rejects is "infeasible".
_FAILED = {"error": "error", "time_limit": "timeout", "unavailable": "n/a"}
_MARKS = {"×": "infeasible", "timeout": "no solution within the time limit", "n/a": "solver not installed"}
_KIND_ORDER = {"exact": 0, "bound": 1, "heuristic": 2, "baseline": 3}
_BOUND_NOTE = "(…) = a bound method: how far its bound lies from the reference, not a solution's gap"
_STAR_NOTE = "* = gap to a bound or the best found solution, not a proven optimum"


def _methods(rows: list[dict]) -> list[str]:
    """Methods in first-seen order within kind: exact and bound (the references) first, then heuristics, then
    baselines."""
    first = {r["method"]: (_KIND_ORDER.get(r["kind"], 4), k) for k, r in reversed(list(enumerate(rows)))}
    return sorted(first, key=first.get)


def _short_names(names: list[str]) -> tuple[list[str], str]:
    """Drop the hyphen-separated words all names share at the start and end, so they fit a narrow column.

    Returns the short names and the pattern they fill in (``paper-j30-…``), or "" when nothing was dropped.
    Distinct names stay distinct: only words every name has in the same place are dropped.
    """
    words = [n.split("-") for n in names]
    if len(words) < 2:
        return names, ""
    head = tail = 0
    while all(len(w) > head + 1 for w in words) and len({w[head] for w in words}) == 1:
        head += 1
    while all(len(w) > head + tail + 1 for w in words) and len({w[-1 - tail] for w in words}) == 1:
        tail += 1
    short = ["-".join(w[head:len(w) - tail]) for w in words]
    if (not head and not tail) or "" in short:
        return names, ""
    w0 = words[0]
    return short, "-".join(w0[:head] + ["…"] + w0[len(w0) - tail:])


def _wrap(label: str, width: int) -> str:
    """Break a label after hyphens into lines of at most ``width`` (longer words stay whole)."""
    lines = [""]
    for word in re.findall(r"[^-]*-|[^-]+", label):
        if lines[-1] and len(lines[-1]) + len(word) > width:
            lines.append("")
        lines[-1] += word
    return "\n".join(lines)


def _percent(gap: float) -> str:
    """A relative gap in percent, in at most 5 characters below 100000 %, so columns stay narrow."""
    g = 100 * gap
    return f"{g:.2f}" if g < 100 else f"{g:.1f}" if g < 1000 else f"{g:.0f}"


def _verdict(row: dict) -> str:
    """A result's status as the referee sees it: a claimed solution it rejects is infeasible."""
    return row["status"] if row["feasible"] or row["status"] in _FAILED or _is_bound(row) else "infeasible"


def _is_bound(row: dict) -> bool:
    """A proven bound: a result without a solution that is not a failure."""
    return row["status"] == "bound"


def _title(rows: list[dict]) -> str:
    """Which problem, and what its gaps are measured against."""
    refs = {r["gap_ref"] for r in rows if r["gap_ref"]}
    against = " or ".join(name for ref, name in (("optimum", "the proven optimum"), ("bound", "the best bound"),
                                                 ("best found", "the best found")) if ref in refs)
    problems = ", ".join(dict.fromkeys(r["problem"] for r in rows))
    return f"{problems}: gap to {against or 'the proven optimum'}"


def gap_table(rows: list[dict], width: int = 80):
    """Instances down, methods across, each method's gap in percent; made to read at ``width`` columns.

    Instance names lose the words they all share, method names wrap after hyphens, and when the methods
    still do not fit they are split into blocks of columns. Returns a ``rich.console.Group``: the title,
    the table(s), and notes for the marks used, so neither title nor notes wrap to a narrow table's width.
    The mean row averages only the instances on which every method is feasible, so the means compare
    like with like; the count row says how often each method had no feasible result.
    """
    from rich import box
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

    methods = _methods(rows)
    instances = list(dict.fromkeys(r["instance"] for r in rows))
    cell = {(r["instance"], r["method"]): r for r in rows}
    short, pattern = _short_names(instances)
    starred = {r["instance"] for r in rows if r["gap_ref"] in ("bound", "best found")}
    labels = [s + ("*" if i in starred else "") for i, s in zip(instances, short)]
    common = [i for i in instances if all(cell.get((i, m), {}).get("gap_to_best") is not None for m in methods)]
    title = _title(rows) + ", %" + (f"; instances {pattern}" if pattern else "")

    def text(i: str, m: str) -> str:
        r = cell.get((i, m))
        if r is None:
            return ""
        if _is_bound(r):
            return "(?)" if r["gap_to_best"] is None else f"({_percent(r['gap_to_best'])})"
        if not r["feasible"]:
            return _FAILED.get(r["status"], "×")
        return "?" if r["gap_to_best"] is None else _percent(r["gap_to_best"])

    columns = {m: [text(i, m) for i in instances] for m in methods}
    if common:
        for m in methods:
            columns[m].append(_percent(sum(cell[i, m]["gap_to_best"] for i in common) / len(common)))
    for m in methods:
        columns[m].append(str(sum(1 for i in instances if (i, m) in cell and not cell[i, m]["feasible"]
                                  and not _is_bound(cell[i, m]))))
    footer = ([f"mean over {len(common)} common"] if common else []) + ["infeasible/failed"]

    # a rule under the header and one above the summary rows, broken between columns
    rules = box.Box("    \n    \n ─  \n    \n ─  \n    \n    \n    \n")
    measure = Console(width=10 * width + 100)

    def fits(t) -> bool:
        return measure.measure(t).maximum <= width

    def table(block: list[str], wrap: bool):
        t = Table(box=rules, show_edge=False, pad_edge=False, collapse_padding=True)
        t.add_column("instance", no_wrap=True)
        for m in block:
            fit = max(len(s) for s in columns[m] + re.findall(r"[^-]*-|[^-]+", m))
            t.add_column(Text(_wrap(m, fit) if wrap else m), justify="right", no_wrap=True)
        n = len(instances)
        for k, label in enumerate(labels + footer):  # Text: names are never read as rich markup
            t.add_row(Text(label), *(columns[m][k] for m in block), end_section=k == n - 1,
                      style="bold" if k >= n else None)
        return t

    def split() -> list[list[str]]:
        """The methods in as few blocks as fit, spread evenly when that fits too."""
        blocks: list[list[str]] = [[]]
        for m in methods:
            if blocks[-1] and not fits(table(blocks[-1] + [m], True)):
                blocks.append([])
            blocks[-1].append(m)
        size = math.ceil(len(methods) / len(blocks))
        even = [methods[k:k + size] for k in range(0, len(methods), size)]
        return even if all(fits(table(b, True)) for b in even) else blocks

    tables = [table(methods, False)]
    if not fits(tables[0]):
        tables = [table(b, True) for b in split()]
    shown = {s for col in columns.values() for s in col}
    notes = [f"{mark} = {what}" for mark, what in _MARKS.items() if mark in shown]
    notes += [_STAR_NOTE] if starred else []
    notes += [_BOUND_NOTE] if any(_is_bound(r) for r in rows) else []
    parts = [Text(title, style="bold")]
    for k, t in enumerate(tables):
        parts += [Text(), t] if k else [t]
    return Group(*parts, *(Text(note) for note in notes))


PLOT_SUFFIXES = ("", ".png", ".svg", ".pdf")  # what `compare --plot` writes (no suffix: PNG)


def plot_gaps(rows: list[dict], path: str | Path):
    """Bar chart of each method's gap per instance, written to ``path`` (PNG, SVG or PDF by its suffix).

    The y axis is symlog (log, yet zero gaps stay on the axis) when the positive gaps span more than two
    decades, so a 0.01 % gap is not lost beside a 50 % one; an ``x`` at the foot of a slot marks a result
    with no feasible solution, which a missing bar would hide. Returns the matplotlib Figure (no pyplot, so
    a notebook's backend is left alone).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    methods = _methods(rows)
    instances = list(dict.fromkeys(r["instance"] for r in rows))
    cell = {(r["instance"], r["method"]): r for r in rows}
    short, pattern = _short_names(instances)
    starred = {r["instance"] for r in rows if r["gap_ref"] in ("bound", "best found")}
    width = 0.8 / max(len(methods), 1)
    fig = Figure(figsize=(min(16.0, max(6.0, 0.12 * len(instances) * len(methods) + 3)), 4.5), layout="constrained")
    ax = fig.subplots()
    failed_any = False
    for k, m in enumerate(methods):
        xs = [x + (k - (len(methods) - 1) / 2) * width for x in range(len(instances))]
        gaps = [cell[i, m]["gap_to_best"] if (i, m) in cell else None for i in instances]
        # an edge of the bar's own colour draws a zero gap as a line instead of nothing
        bound = any(_is_bound(cell[i, m]) for i in instances if (i, m) in cell)  # hatched: a bound's distance
        ax.bar(xs, [math.nan if g is None else 100 * g for g in gaps], width=width, label=m + (" (bound)" if bound else ""),
               color=f"C{k % 10}", edgecolor=f"C{k % 10}", linewidth=1.5, zorder=3, hatch="//" if bound else None,
               fill=not bound)
        failed = [x for x, i in zip(xs, instances)
                  if (i, m) in cell and not cell[i, m]["feasible"] and not _is_bound(cell[i, m])]
        failed_any = failed_any or bool(failed)
        ax.plot(failed, [0] * len(failed), "x", color=f"C{k % 10}", markersize=7, mew=2, zorder=4)
    positive = [100 * r["gap_to_best"] for r in rows if r["gap_to_best"]]
    if positive and max(positive) / min(positive) > 100:
        ax.set_yscale("symlog", linthresh=min(positive))
        ax.set_ylim(bottom=-0.2 * min(positive))  # zero gaps sit just above the axis, not on it
    else:
        ax.set_ylim(bottom=-0.02 * max(positive, default=1))
    ax.axhline(0, color="0.6", linewidth=0.5, zorder=2)
    ax.set_xticks(range(len(instances)), [s + ("*" if i in starred else "") for i, s in zip(instances, short)],
                  rotation=30 if max(map(len, short), default=0) > 6 else 0, ha="right")
    ax.set_xlabel(f"instance ({pattern})" if pattern else "instance")
    ax.set_ylabel("gap, %")
    ax.set_title(_title(rows) + ("\n* = gap to a bound or the best found, not a proven optimum" if starred else ""))
    handles, _ = ax.get_legend_handles_labels()
    if failed_any:
        handles.append(Line2D([], [], color="0.3", marker="x", mew=2, linestyle="", label="no feasible result"))
    fig.legend(handles=handles, loc="outside right upper", fontsize="small")
    buf = BytesIO()  # rendered in memory, then written atomically like every file edgeopt writes
    fig.savefig(buf, format=Path(path).suffix.lstrip(".").lower() or "png")
    write_bytes(buf.getvalue(), path)
    return fig


class RunProgress:
    """Progress of a long comparison, so a user knows it is alive and when it will end.

    On a terminal: a live bar with done/total, elapsed time (redrawn twice a second, even while one long
    solve runs) and time remaining. Elsewhere (a log, CI, a dumb terminal): exactly one plain line per
    finished row, no control codes.
    ``enabled=False`` shows nothing (``--json``). ``total`` may come later, through ``planned``.
    """

    def __init__(self, total: int | None = None, console=None, enabled: bool = True):
        from rich.console import Console

        self.total, self.done = total, 0
        self.console = console or Console(stderr=True)
        self.running: list[str] = []
        self._bar = None
        if enabled and self.console.is_terminal and not self.console.is_dumb_terminal:  # a bar must redraw
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            from rich.table import Column

            label = TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis"))
            # the speed behind the ETA is averaged over the whole run, not rich's last 30 s: rows can take minutes
            self._bar = Progress(BarColumn(bar_width=20), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
                                 TimeRemainingColumn(), label, console=self.console, transient=True,
                                 auto_refresh=True, refresh_per_second=2, speed_estimate_period=1e9)
        self._plain = enabled and self._bar is None

    def __enter__(self) -> RunProgress:
        if self._bar:
            self._bar.start()
            self._task = self._bar.add_task("", total=self.total)
            self._bar.advance(self._task, 0)  # a first sample at the start, so the first row gives a speed
        return self

    def __exit__(self, *exc) -> None:
        if self._bar:
            self._bar.stop()

    def planned(self, total: int) -> None:
        """The number of rows to run, for a caller that learns it only inside the run (after a resume)."""
        self.total = total
        if self._bar:
            self._bar.update(self._task, total=total)  # which drops rich's speed samples: prime them again
            self._bar.advance(self._task, 0)

    def started(self, label: str) -> None:
        """A task began; ``label`` is shown while it runs (``instance · method`` is matched to its finished row)."""
        self.running.append(label)
        self._describe()

    def finished(self, row: dict) -> None:
        """A row finished: advance the bar, or print its one line."""
        self.done += 1
        label = f"{row['instance']} · {row['method']}"
        if label in self.running:
            self.running.remove(label)
        elif self.running:
            self.running.pop(0)
        if self._bar:
            self._bar.advance(self._task)
            self._describe()
        elif self._plain:
            objective = (f"bound {row['bound']:.6g}" if _is_bound(row) else
                         "-" if row["objective"] is None else f"{row['objective']:.6g}")
            line = (f"[{self.done}/{self.total or '?'}] {row['instance']} {row['method']} {_verdict(row)} {objective}"
                    f" ({row['wall_s']:.2f} s)")
            if row["status"] in _FAILED and row.get("message"):
                line += ": " + row["message"].splitlines()[0]
            self.console.out(line, highlight=False)

    def _describe(self) -> None:
        if self._bar:
            more = f" (+{len(self.running) - 1})" if len(self.running) > 1 else ""
            self._bar.update(self._task, description=self.running[-1] + more if self.running else "")
