"""What a newcomer reads of `compare`: the gap table at 80 columns, the gap chart, the progress of a run."""
from __future__ import annotations

import io
import json
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from conftest import shipped
from edgeopt.compare import FIELDS
from edgeopt.report import RunProgress, _short_names, gap_table, plot_gaps

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def row(instance, method, gap=0.0, *, kind="heuristic", status="feasible", ref="optimum", problem="partition"):
    """A compare row: ``gap=None`` with a failing status is a result without a feasible solution."""
    r = dict.fromkeys(FIELDS)
    feasible = gap is not None
    r.update(problem=problem, instance=instance, method=method, kind=kind, status=status, feasible=feasible,
             objective=55.6412345 if feasible or status == "feasible" else None, gap_to_best=gap,
             gap_ref=ref if feasible else None, wall_s=0.061, seed=0, violations=[], file=f"{instance}.json")
    return r


def partition_rows():
    """The 6 partition methods on the shipped instance names, as the shipped comparison comes out."""
    names = [json.loads(p.read_text())["name"] for p in shipped("partition")]
    rows = []
    for k, name in enumerate(names):
        latency = "latency" in name
        rows.append(row(name, "milp", kind="exact", status="optimal"))
        rows.append(row(name, "dp-latency" if latency else "dp-throughput", 0.036 * (k % 3) if latency else 0.0,
                        kind="heuristic" if latency else "exact", status="feasible" if latency else "optimal"))
        rows.append(row(name, "edge-solo", None, kind="baseline"))
        for m, g in (("cloud-edge-even", 9.3594), ("cloud-edge-opt", 22.404)):
            rows.append(row(name, m, g if k % 3 == 1 else None, kind="baseline"))
    return rows


def paper_rows():
    """10 methods on 12 instances named like the DAG-scheduling paper's, some failing, one solver missing."""
    methods = ["milp", "heft", "peft", "cpop", "cs-ucb", "greedy-edge", "all-cloud", "random", "lookahead-heft"]
    rows = []
    for s in range(1, 13):
        name = f"paper-j30-w6-tmax3-s{s}"
        rows.append(row(name, "cp-sat", None, kind="exact", status="unavailable", problem="dagsched"))
        for k, m in enumerate(methods):
            status = "optimal" if m == "milp" else ["feasible", "error", "time_limit", "infeasible"][(s * k) % 7 % 4]
            ok = status in ("optimal", "feasible")
            gap = 0.0 if m == "milp" else (s * k % 11) * 0.273
            rows.append(row(name, m, gap if ok else None, kind="exact" if m == "milp" else "heuristic",
                            status=status, ref="bound" if s == 3 else "optimum", problem="dagsched"))
    return rows


def render(renderable, width: int = 80) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def blocks(text: str) -> list[tuple[list[str], list[str]]]:
    """(column headers, row labels) of each table in the rendered text, read back through the header rules."""
    lines = text.splitlines()
    rules = [k for k, line in enumerate(lines) if line.strip() and set(line) <= {"─", " "}]
    out = []
    for head, foot in zip(rules[::2], rules[1::2]):  # each table: a rule under its header, one above its summary
        spans = [m.span() for m in re.finditer("─+", lines[head])]
        label = slice(*spans[0])
        top = head
        while top > 0 and lines[top - 1][label].strip() in ("", "instance"):
            top -= 1
        headers = ["".join(line[a:b].strip() for line in lines[top:head]) for a, b in spans]
        out.append((headers, [line[label].strip() for line in lines[head + 1:foot]]))
    return out


@pytest.mark.parametrize("rows, labels", [
    (partition_rows(), [json.loads(p.read_text())["name"] for p in shipped("partition")]),
    (paper_rows(), [f"s{s}*" if s == 3 else f"s{s}" for s in range(1, 13)]),
], ids=["partition", "paper-10x12"])
def test_gap_table_reads_at_80_columns(rows, labels):
    """Rich cuts long names to the same prefix when a table is too wide; every label must stay whole."""
    text = render(gap_table(rows))
    assert max(map(len, text.splitlines())) <= 80
    methods = {r["method"] for r in rows}
    shown = []
    for headers, row_labels in blocks(text):
        assert headers[0] == "instance"
        shown += headers[1:]
        assert row_labels == labels  # whole, distinct, and in the order given
    assert sorted(shown) == sorted(methods)  # each method once, its full name readable from the wrapped header
    assert "…" not in text.split("\n", 2)[2]  # no label ellipsized (only the title's shared-prefix pattern)


def test_gap_table_is_one_table_when_wide_enough():
    """Splitting is only a fallback for narrow terminals."""
    assert len(blocks(render(gap_table(paper_rows(), width=200), 200))) == 1


def test_shared_name_words_move_to_the_title():
    text = render(gap_table(paper_rows()))
    assert "instances paper-j30-w6-tmax3-…" in " ".join(text.split())


def test_footnote_only_when_a_gap_is_not_against_an_optimum():
    """A `*` note under a table where nothing is starred sends readers looking for stars."""
    proven = [row("a", "milp", kind="exact", status="optimal"), row("a", "h", 0.1)]
    assert "*" not in render(gap_table(proven))
    bounded = [dict(r, gap_ref="bound") for r in proven] + [row("b", "milp"), row("b", "h", 0.2)]
    text = render(gap_table(bounded))
    assert blocks(text)[0][1] == ["a*", "b"]
    assert "* = gap to a bound or the best found solution, not a proven optimum" in text
    assert "best bound" in text.splitlines()[0]


def summary(text: str, label: str) -> list[str]:
    return next(line for line in text.splitlines() if line.startswith(label))[len(label):].split()


def test_mean_compares_methods_on_the_instances_all_solved():
    """A method that fails on the hard instances must not get a better mean for it."""
    rows = [row("i1", "milp", kind="exact", status="optimal"), row("i1", "h", 0.10), row("i1", "b", 0.30),
            row("i2", "milp", kind="exact", status="optimal"), row("i2", "h", 0.20),
            row("i2", "b", None, status="error"),
            row("i3", "milp", kind="exact", status="optimal"), row("i3", "h", None), row("i3", "b", 0.05)]
    text = render(gap_table(rows))
    assert summary(text, "mean over 1 common") == ["0.00", "10.00", "30.00"]
    assert summary(text, "infeasible/failed") == ["0", "1", "1"]
    assert "× = infeasible" in text


def test_results_without_a_solution_are_named_and_counted():
    rows = [row("i1", "milp", None, kind="exact", status="time_limit"),
            row("i1", "cp-sat", None, kind="exact", status="unavailable"), row("i1", "h", 0.0, ref="best found")]
    text = render(gap_table(rows))
    cells = next(line for line in text.splitlines() if line.startswith("i1")).split()
    assert cells == ["i1*", "timeout", "n/a", "0.00"]
    assert summary(text, "infeasible/failed") == ["1", "1", "0"]
    assert "mean over" not in text  # no instance that all methods solved
    assert "timeout = no solution within the time limit" in text and "n/a = solver not installed" in text


@given(st.lists(st.text("ab-", min_size=1, max_size=8), min_size=2, max_size=6, unique=True))
def test_short_names_stay_distinct(names):
    short, _ = _short_names(names)
    assert len(set(short)) == len(names) and all(short)


def gap_rows(gaps):
    return ([row(f"inst-{k}", "milp", kind="exact", status="optimal") for k in range(len(gaps))]
            + [row(f"inst-{k}", "greedy", g) for k, g in enumerate(gaps)]
            + [row("inst-0", "random", None, kind="baseline")])


def test_plot_uses_symlog_when_gaps_span_decades(tmp_path):
    """A 0.01 % gap beside a 50 % one is invisible on a linear axis; symlog keeps zero gaps drawable."""
    path = tmp_path / "out" / "gaps.png"
    fig = plot_gaps(gap_rows([0.0, 1e-4, 0.5]), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = fig.axes[0]
    assert ax.get_yscale() == "symlog"
    assert ax.get_title() == "partition: gap to the proven optimum"
    assert "no feasible result" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_plot_stays_linear_within_two_decades(tmp_path):
    fig = plot_gaps(gap_rows([0.0, 0.01, 0.5]), tmp_path / "gaps.png")
    assert fig.axes[0].get_yscale() == "linear"


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_plot_format_follows_the_suffix(tmp_path, suffix, magic):
    path = tmp_path / f"gaps{suffix}"
    plot_gaps(gap_rows([0.0, 0.2]), path)
    assert path.read_bytes().startswith(magic)


def finished_rows():
    return [row("llama2-7b-d5-latency", "milp", kind="exact", status="optimal"),
            row("llama2-7b-d5-latency", "edge-solo", None, kind="baseline"),
            dict(row("llama2-7b-d5-latency", "cp-sat", None, kind="exact", status="error"), message="boom\ntrace")]


@pytest.mark.parametrize("terminal, term", [(False, "xterm"), (True, "dumb")], ids=["pipe", "dumb-terminal"])
def test_progress_off_a_terminal_is_one_plain_line_per_row(monkeypatch, terminal, term):
    """Logs and CI keep one readable line per result, without a bar's control codes."""
    monkeypatch.setenv("TERM", term)
    out = io.StringIO()
    with RunProgress(total=3, console=Console(file=out, force_terminal=terminal)) as progress:
        for r in finished_rows():
            progress.started(f"{r['instance']} · {r['method']}")
            progress.finished(r)
    assert out.getvalue().splitlines() == [
        "[1/3] llama2-7b-d5-latency milp optimal 55.6412 (0.06 s)",
        "[2/3] llama2-7b-d5-latency edge-solo infeasible 55.6412 (0.06 s)",
        "[3/3] llama2-7b-d5-latency cp-sat error - (0.06 s): boom",
    ]


def test_progress_on_a_terminal_redraws_while_a_solve_runs(monkeypatch):
    """A bar that stands still during a long solve looks hung; the elapsed time must keep moving."""
    monkeypatch.setenv("TERM", "xterm-256color")  # rich does not redraw on a dumb terminal
    out = io.StringIO()
    with RunProgress(console=Console(file=out, force_terminal=True, width=80)) as progress:
        progress.planned(3)  # as compare reports it, once it knows what a resumed run still has to do
        first, *rest = finished_rows()
        progress.started("llama2-7b-d5-latency · milp")
        time.sleep(2.2)  # one long solve, no calls into the progress
        assert "0/3 0:00:01" in ANSI.sub("", out.getvalue())
        progress.finished(first)
        time.sleep(1.1)
        for r in rest:
            progress.finished(r)
    text = ANSI.sub("", out.getvalue())
    assert re.search(r"1/3 0:00:0\d eta 0:00:0\d", text)  # an ETA once a row has finished
    assert "[1/3]" not in text


def test_progress_disabled_prints_nothing():
    out = io.StringIO()
    with RunProgress(total=3, console=Console(file=out, force_terminal=False), enabled=False) as progress:
        for r in finished_rows():
            progress.finished(r)
    assert out.getvalue() == ""
