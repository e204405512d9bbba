"""GXL and DOT task graphs with communication costs -> dagsched instances on identical processors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeopt import evaluate, io
from edgeopt.importers.dot import import_dot
from edgeopt.importers.gxl import import_gxl
from edgeopt.problems.dagsched import Solution

DATA = Path(__file__).parents[1] / "data" / "dagsched"


def test_gxl_weights_become_execution_and_transfer_times():
    """Node weights are work on 1 Hz processors, edge weights bits over 1 bit/s links: times as written."""
    inst = import_gxl(DATA / "fork_join.gxl", processors=2)
    d = inst.data
    job = d.jobs[0]
    assert [t.cycles for t in job.tasks] == [2, 6, 6, 6, 2] and [t.name for t in job.tasks] == list("01234")
    assert [(e.src, e.dst, e.bits) for e in job.edges] == [(0, 1, 20), (0, 2, 4), (0, 3, 30), (1, 4, 20),
                                                           (2, 4, 4), (3, 4, 30)]
    assert len(d.servers) == 2 and d.cloud is None and d.gamma == 1.0 and d.t_max_s is None
    assert inst.meta == {"importer": "gxl", "source": "fork_join.gxl",
                         "graph": "Fork_Join_Nodes_5_CCR_10.00_WeightType_Hand", "processors": 2, "tasks": 5,
                         "exit_task": False}


def test_dot_and_gxl_of_the_same_graph_give_the_same_instance():
    gxl, dot = import_gxl(DATA / "fork_join.gxl", processors=3), import_dot(DATA / "fork_join.dot", processors=3)
    assert io.instance_doc(gxl)["data"] == io.instance_doc(dot)["data"]


def test_transfers_are_free_on_the_same_processor():
    """The hand-checked schedules: 22 on one processor; moving task 2 off pays 4 + 4 and gives 18."""
    inst = import_dot(DATA / "fork_join.dot", processors=2)
    one = evaluate(inst, Solution(order=[[(0, j) for j in range(5)], []]))
    assert one.feasible and one.objective == pytest.approx(22)
    split = evaluate(inst, Solution(order=[[(0, 0), (0, 3), (0, 1), (0, 4)], [(0, 2)]]))
    assert split.feasible and split.objective == pytest.approx(18)
    np.testing.assert_allclose(split.details["start_finish"][0], [[0, 2], [8, 14], [6, 12], [2, 8], [16, 18]])
    apart = evaluate(inst, Solution(order=[[(0, 0), (0, 4)], [(0, 1), (0, 2), (0, 3)]]))
    # p1 runs 1 (data at 2 + 20 = 22) to 28, 2 to 34, 3 to 40; 4 waits for 3's data: 40 + 30, ends 72
    assert apart.objective == pytest.approx(72)


def test_several_sinks_get_a_zero_work_exit_task():
    inst = import_dot(DATA / "out_tree.dot", processors=2)
    job = inst.data.jobs[0]
    assert [(t.name, t.cycles) for t in job.tasks] == [("a", 3), ("b", 1), ("c", 4), ("exit", 0)]
    assert [(e.src, e.dst, e.bits) for e in job.edges] == [(0, 1, 5), (0, 2, 7), (1, 3, 0), (2, 3, 0)]
    assert inst.meta["exit_task"] is True
    ev = evaluate(inst, Solution(order=[[(0, 0), (0, 2), (0, 1), (0, 3)], []]))
    assert ev.objective == pytest.approx(8)  # b's default Weight=1 from `node [Weight=1]`


def test_list_and_milp_agree_with_the_hand_optimum(cli, tmp_path):
    """HEFT's choices on fork_join (ranks 0, 3, 1, 2, 4) reach the optimum 18, which the MILP proves."""
    out = tmp_path / "fj.json"
    code, _, err = cli("import", "gxl", DATA / "fork_join.gxl", "--processors", "2", "-o", out)
    assert code == 0, err
    from edgeopt import solve

    inst = io.load(out)
    assert solve(inst, "list").objective == pytest.approx(18)
    r = solve(inst, "milp", time_limit=30)
    assert r.status == "optimal" and r.objective == pytest.approx(18)


GXL_HEAD = '<?xml version="1.0"?><gxl><graph id="g" edgemode="directed">'


@pytest.mark.parametrize("fmt,text,message", [
    ("gxl", "<gxl><graph>", "line 1 is not well-formed XML"),
    ("gxl", "<graphml/>", "must be a GXL document (root element <gxl>)"),
    ("gxl", "<gxl/>", "must hold a <graph> element"),
    ("gxl", '<gxl><graph edgemode="undirected"/></gxl>', "must be directed"),
    ("gxl", GXL_HEAD + "</graph></gxl>", "holds no nodes"),
    ("gxl", GXL_HEAD + '<node id="a"/></graph></gxl>', "node 'a' must have a Weight attribute"),
    ("gxl", GXL_HEAD + '<node id="a"><attr name="Weight"><int>-3</int></attr></node></graph></gxl>',
     "node 'a' Weight must be a finite number >= 0, got -3"),
    ("gxl", GXL_HEAD + '<node id="a"><attr name="Weight"><int>x</int></attr></node></graph></gxl>',
     "node 'a' Weight must be a number >= 0, got 'x'"),
    ("gxl", GXL_HEAD + '<node id="a"><attr name="Weight"><int>1</int></attr></node>'
                       '<edge from="a" to="b"><attr name="Weight"><int>1</int></attr></edge></graph></gxl>',
     "edge 'a' -> 'b' names node 'b', which is not a <node>"),
    ("gxl", GXL_HEAD + '<node id="a"><attr name="Weight"><int>1</int></attr></node>'
                       '<node id="a"><attr name="Weight"><int>1</int></attr></node></graph></gxl>',
     "node 'a' repeats a node id"),
    ("dot", "", "must start with `digraph NAME {`"),
    ("dot", "graph g { a -- b }", "must be a digraph"),
    ("dot", "digraph g {\n a [Weight=1];\n b [Weight=2];\n a -> b;\n}", "line 4: edge 'a' -> 'b' must have a Weight"),
    ("dot", "digraph g {\n a [Weight=1];\n a -> c [Weight=1];\n}", "line 3: node 'c' must have a Weight"),
    ("dot", "digraph g {\n a [Weight=1]\n b [Weight=x]\n}", "line 3: node 'b' Weight must be a number >= 0"),
    ("dot", "digraph g {\n a [Weight=1]\n subgraph s { b }\n}", "line 3 has a subgraph"),
    ("dot", "digraph g {\n a [Weight=1, ]\n b [Weight 2]\n}", "line 3 must have '=' after attribute 'Weight'"),
    ("dot", "digraph g {\n a [Weight=1]\n b @ c\n}", "line 3 has '@', which is not DOT"),
    ("dot", "digraph g {\n a [Weight=1]\n", "must have '}' here, got 'the end of the file'"),
    ("dot", "digraph g { a [Weight=1]; a -> a [Weight=1] }", "edge 'a' -> 'a' must join two different nodes"),
    ("dot", "digraph g { a [Weight=1]; b [Weight=1]; a -> b [Weight=1]; b -> a [Weight=1] }",
     "edges must form an acyclic graph; nodes ['a', 'b'] lie on or behind a cycle"),
    ("dot", "digraph g { a [Weight=1]; b [Weight=1]; a -> b [Weight=1];\n a -> b [Weight=2] }",
     "line 2: edge 'a' -> 'b' repeats the edge of line 1"),
])
def test_bad_graph_file_is_exit_2_naming_the_place(cli, tmp_path, fmt, text, message):
    path = tmp_path / f"bad.{fmt}"
    path.write_text(text)
    out = tmp_path / "out.json"
    code, _, err = cli("import", fmt, path, "--processors", "2", "-o", out)
    assert code == 2 and message in err and "Traceback" not in err and not out.exists(), err


def test_processors_must_be_positive(cli, tmp_path):
    code, _, err = cli("import", "dot", DATA / "fork_join.dot", "--processors", "0", "-o", tmp_path / "x.json")
    assert code == 2 and "--processors must be 1..1024" in err


@pytest.mark.parametrize("path", sorted((DATA / "ccr10").glob("*.gxl")), ids=lambda p: p.stem)
def test_sample_graphs_import_and_list_respects_the_lower_bounds(path):
    """The communication-dominated samples (README measurement): list is never below the work bounds."""
    from edgeopt import solve

    inst = import_gxl(path, processors=4)
    job = inst.data.jobs[0]
    work = np.array([t.cycles for t in job.tasks])
    longest = work.copy()  # heaviest work path ending at each sub-task (sub-tasks are numbered topologically)
    for e in sorted(job.edges, key=lambda e: e.dst):
        longest[e.dst] = max(longest[e.dst], longest[e.src] + work[e.dst])
    r = solve(inst, "list")
    assert r.feasible and r.objective >= max(longest.max(), work.sum() / 4) - 1e-9
