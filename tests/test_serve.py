"""`edgeopt serve` through real server processes on 127.0.0.1 (started and always stopped by the test).

No test waits a fixed time: each waits for a state the service reports (its "listening" line, a job
``running`` with its method started, a counter in /metrics, a worker process gone).
"""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from conftest import INSTANCES, ROOT, free_port, running_dask  # noqa: E402
from edgeopt import evaluate, generate, io, registry  # noqa: E402
from edgeopt.compare import add_gaps, solve_row  # noqa: E402

EDGEOPT = [sys.executable, "-c", "from edgeopt.cli import main; main()"]
PLACEMENT = INSTANCES / "placement" / "small" / "small-m4-d4-s1.json"
TOKEN = "s3cret-token-for-the-tests-0123456789"


class Server:
    """``edgeopt serve --port 0 ...`` in a subprocess; its URL from the line it prints once it listens."""

    def __init__(self, folder: Path, *flags: str, store: Path | None = None):
        self.store = store or folder / "jobs.sqlite"
        self.proc = subprocess.Popen(EDGEOPT + ["serve", "--port", "0", "--store", str(self.store), *flags],
                                     cwd=folder, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True).start()
        self.url = self.wait_for("listening on ").split("listening on ")[1].split()[0]

    def wait_for(self, text: str, timeout: float = 120) -> str:
        end = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines if text in line]
            if found:
                return found[0]
            assert self.proc.poll() is None and time.monotonic() < end, f"no {text!r} in {self.lines}"
            time.sleep(0.02)

    def client(self, token: str | None = None, timeout: float = 300) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def workers(self) -> set[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        return {int(p) for p in out if "spawn_main" in _cmdline(int(p))}

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_text()
    return ""


def _alive(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


def _until(check, timeout: float = 180, every: float = 0.05):
    """Poll ``check()`` until it returns something true (its value), failing after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < end, "the state waited for never came"
        time.sleep(every)
    return value


@pytest.fixture
def servers(tmp_path):
    """Start servers with ``servers(*flags)``; every one is stopped at the end, whatever happened."""
    started: list[Server] = []

    def start(*flags: str, store: Path | None = None) -> Server:
        started.append(Server(tmp_path, *flags, store=store))
        return started[-1]

    yield start
    for s in started:
        s.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One service for the tests that do not change its settings (2 workers)."""
    s = Server(tmp_path_factory.mktemp("serve"), "--jobs", "2")
    yield s
    s.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def slow_doc() -> dict:
    """A dagsched instance whose MILP runs for minutes: a job to cancel, or to kill the service under."""
    return io.instance_doc(generate("dagsched", size=30, seed=1))


def _doc(path: Path = PLACEMENT) -> dict:
    return json.loads(path.read_text())


def _metric(client: httpx.Client, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _running(client: httpx.Client, job_id: str):
    """The job, once one of its methods has started in a worker."""
    job = client.get(f"/jobs/{job_id}").json()
    return job if job["status"] == "running" and job["running"] else None


def _done(client: httpx.Client, job_id: str):
    job = client.get(f"/jobs/{job_id}").json()
    return job if job["status"] not in ("queued", "running") else None


# --- every endpoint, through a real server ----------------------------------------------------------

def test_problems_is_edgeopt_list_json(server):
    from edgeopt.solvers import available_solvers

    assert server.client().get("/problems").json() == json.loads(json.dumps(registry.listing(available_solvers())))


def test_problem_schema_is_edgeopt_schema(server):
    c = server.client()
    for pid in registry.problems():
        assert c.get(f"/problems/{pid}/schema").json() == io.schema(pid)
    assert c.get("/problems/nope/schema").status_code == 404


def test_openapi_documents_the_issue_endpoints_with_edgeopt_models(server):
    """The request bodies are the models the files use: an instance field lists every problem's instance schema,
    each naming its problem as `edgeopt schema` does."""
    doc = server.client().get("/openapi.json").json()
    assert set(doc["paths"]) == {"/problems", "/problems/{problem}/schema", "/validate", "/solve", "/jobs",
                                 "/jobs/{job_id}", "/healthz", "/metrics"}
    assert set(doc["paths"]["/jobs/{job_id}"]) == {"get", "delete"}
    schemas = doc["components"]["schemas"]
    solve = doc["paths"]["/solve"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    instance = schemas[solve.rsplit("/", 1)[1]]["properties"]["instance"]
    refs = [m["$ref"].rsplit("/", 1)[1] for m in instance["oneOf"]]
    assert sorted(schemas[r]["properties"]["problem"]["const"] for r in refs) == sorted(registry.problems())
    assert "experiment" in schemas["ExperimentJob"]["properties"] and "Experiment" in schemas
    assert server.client().get("/docs").status_code == 200


def test_validate_answers_as_the_command_line(server, cli, tmp_path):
    """A valid instance is valid; a bad field gets 422 with the path and rule `edgeopt validate` prints."""
    c = server.client()
    ok = c.post("/validate", json={"instance": _doc()}).json()
    assert ok == {"problem": "placement", "instance": "small-m4-d4-s1", "valid": True, "verdicts": []}
    bad = _doc()
    bad["data"]["devices"][1]["mem_gb"] = -3
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    code, _, err = cli("validate", tmp_path / "bad.json")
    assert code == 2
    line = err.strip().removeprefix(f"error: {tmp_path / 'bad.json'}: ")
    answer = c.post("/validate", json={"instance": bad})
    assert answer.status_code == 422
    fault = answer.json()["detail"][0]
    assert fault["path"] == "instance.data.devices[1].mem_gb" and f"data.devices[1].mem_gb {fault['msg']}" == line
    assert fault["loc"] == ["body", "instance", "data", "devices", 1, "mem_gb"]


def test_validate_has_the_referee_judge_each_solution(server):
    c = server.client()
    inst = io.load(PLACEMENT)
    good = registry.problem("placement").method("lpt-ls").run(inst)
    broken = {"solution": {**good.solution, "device": [0] * len(good.solution["device"])}}
    answer = c.post("/validate", json={"instance": _doc(), "solution": [io.solution_doc(good), broken]}).json()
    assert [v["method"] for v in answer["verdicts"]] == ["lpt-ls", None]
    assert answer["verdicts"][0]["objective"] == pytest.approx(good.objective) and answer["verdicts"][0]["feasible"]
    judged = evaluate(inst, broken)
    assert answer["verdicts"][1]["feasible"] == judged.feasible
    assert answer["verdicts"][1]["violations"] == judged.violations
    bad = c.post("/validate", json={"instance": _doc(), "solution": {"solution": {"device": "x"}}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["path"].startswith("solution.")


def test_solve_answers_with_the_rows_of_solve_json(server, cli):
    """The same rows as `edgeopt solve --json` (bar wall_s), every objective the referee's."""
    rows = server.client().post("/solve", json={"instance": _doc(), "methods": ["heuristic", "baseline"],
                                                "seed": 3}).json()
    code, out, _ = cli("solve", PLACEMENT, "-m", "heuristic", "-m", "baseline", "--seed", "3", "--json")
    assert code == 0
    expected = json.loads(out)
    assert [r["method"] for r in rows] == [r["method"] for r in expected]
    for got, want in zip(rows, expected):
        assert {k: v for k, v in got.items() if k != "wall_s"} == {k: v for k, v in want.items() if k != "wall_s"}
        assert got["objective"] == pytest.approx(evaluate(io.load(PLACEMENT), got).objective)


def test_row_model_is_the_solve_json_row():
    from edgeopt.serve.models import JobRow, Row

    result = registry.problem("placement").method("largest").run(io.load(PLACEMENT))
    assert set(Row.model_fields) == set(solve_row(result))
    assert set(JobRow.model_fields) - set(Row.model_fields) == {"gap_to_best", "gap_ref", "label", "params"}


def test_bad_solve_requests_name_the_field(server):
    c = server.client()
    cases = {"methods[0]": {"instance": _doc(), "methods": ["nope"]},
             "options.completer": {"instance": _doc(), "options": {"completer": "svt"}},
             "seed": {"instance": _doc(), "seed": -1},
             "time_limit": {"instance": _doc(), "time_limit": 0},
             "instance.problem": {"instance": {**_doc(), "problem": "nope"}},
             "instance.data.lam": {"instance": {**_doc(), "data": {**_doc()["data"], "lam": -1}}},
             "unknown": {"instance": _doc(), "unknown": 1},
             "instance": {"instance": str(PLACEMENT)}}  # never a path of the server's: instances come inline
    for path, body in cases.items():
        answer = c.post("/solve", json=body)
        assert answer.status_code == 422 and answer.json()["detail"][0]["path"] == path, (path, answer.text)
    nan = c.post("/solve", content=b'{"instance": {"problem": "placement", "data": {"lam": NaN}}}')
    assert nan.status_code == 422 and nan.json()["detail"][0]["path"] == "instance.data.lam"
    assert "JSON has no NaN" in nan.json()["detail"][0]["msg"]
    assert c.post("/solve", content=b"{").json()["detail"][0]["path"] == "body"


def test_compare_and_experiment_jobs_run_to_done_with_gaps(server):
    """A compare job's rows carry gap_to_best as `compare` computes it; an inline experiment makes its rows."""
    c = server.client()
    docs = [_doc(p) for p in sorted((INSTANCES / "placement" / "small").glob("*.json"))[:2]]
    job = c.post("/jobs", json={"kind": "compare", "instances": docs, "methods": ["milp", "lpt-ls"], "seed": 0})
    assert job.status_code == 202 and job.headers["location"] == f"/jobs/{job.json()['id']}"
    done = _until(lambda: _done(c, job.json()["id"]))
    assert done["status"] == "done" and done["progress"] == {"done": 4, "total": 4} and done["running"] == []
    expected = [{k: r[k] for k in r} for r in done["rows"]]
    add_gaps(expected)
    assert [r["gap_to_best"] for r in done["rows"]] == [r["gap_to_best"] for r in expected]
    assert {r["gap_ref"] for r in done["rows"]} == {"optimum"}
    exp = {"name": "tiny", "problem": "placement", "preset": "small", "sizes": [3], "seeds": 2,
           "methods": ["lpt-ls", {"name": "largest", "label": "big"}], "grid": {"lam": [0.0, 2.0]}}
    job = c.post("/jobs", json={"kind": "experiment", "experiment": exp}).json()
    done = _until(lambda: _done(c, job["id"]))
    assert done["status"] == "done" and len(done["rows"]) == 2 * 2 * 2
    assert {(r["params"]["lam"], r["seed"], r["label"]) for r in done["rows"]} == {
        (lam, s, m) for lam in (0.0, 2.0) for s in (0, 1) for m in ("lpt-ls", "big")}
    page = c.get(f"/jobs/{job['id']}", params={"offset": 6, "limit": 5}).json()
    assert page["offset"] == 6 and page["rows"] == done["rows"][6:]
    bad = c.post("/jobs", json={"kind": "experiment", "experiment": {**exp, "grid": {"nope": [1]}}})
    assert bad.json()["detail"][0]["path"] == "experiment.grid.nope"


def test_delete_stops_a_running_job_as_ctrl_c_does(server, slow_doc):
    """The job's worker process is killed; the job is cancelled; a finished job stays as it ended."""
    c = server.client()
    before = server.workers()
    job = c.post("/jobs", json={"kind": "solve", "instance": slow_doc, "methods": ["milp"], "time_limit": 600})
    running = _until(lambda: _running(c, job.json()["id"]))
    assert running["running"][0]["method"] == "milp"
    answer = c.delete(f"/jobs/{running['id']}").json()
    assert answer["status"] == "cancelled" and answer["rows"] == [] and answer["running"] == []
    _until(lambda: any(not _alive(p) for p in before))
    assert c.delete(f"/jobs/{running['id']}").json()["status"] == "cancelled"  # idempotent
    assert c.delete("/jobs/nope").status_code == 404
    assert _metric(c, 'edgeopt_cancelled_total{reason="deleted"}') >= 1


def test_a_client_that_goes_away_cancels_its_solve(server, slow_doc):
    c = server.client()
    with pytest.raises(httpx.ReadTimeout):
        server.client(timeout=1.0).post("/solve", json={"instance": slow_doc, "methods": ["milp"], "time_limit": 600})
    _until(lambda: _metric(c, 'edgeopt_cancelled_total{reason="client gone"}') >= 1)


def test_healthz_and_metrics(server):
    c = server.client()
    assert c.get("/healthz").json() == {"status": "ok", "workers": 2, "executor": "local", "in_flight": 0,
                                        "queue": 100}
    c.post("/solve", json={"instance": _doc(), "methods": ["largest"]})
    answer = c.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert _metric(c, 'edgeopt_method_runs_total{problem="placement",method="largest",status="feasible"}') >= 1
    assert _metric(c, 'edgeopt_requests_total{route="/solve",method="POST",status="200"}') >= 1
    assert _metric(c, 'edgeopt_method_seconds_count{problem="placement",method="largest"}') >= 1
    assert 'edgeopt_jobs{status="done"}' in answer.text and "edgeopt_queue_limit 100" in answer.text


def test_readme_client_runs_against_a_service(server):
    """The README's httpx client, pasted at the repository root, runs and prints what its comments say."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text[text.index("## Service"):], re.S).group(1)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "EDGEOPT_URL": server.url})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("lpt-ls feasible 1049.83") and lines[1].startswith("milp optimal 1030.59")
    assert lines[2].startswith("done [") and lines[3].startswith("422 time_limit must be at most 600 s")


def test_scheduler_extender_example_binds_every_pod_within_the_nodes(server):
    """examples/scheduler_extender.py: pods and nodes to a placement call and back; the referee agrees with the
    node times it reports, and every node holds its pods' memory and compute."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import scheduler_extender as ext
    finally:
        sys.path.pop(0)
    cluster = json.loads((ROOT / "examples" / "cluster.json").read_text())
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "scheduler_extender.py"),
                           str(ROOT / "examples" / "cluster.json"), "--url", server.url], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert [b["pod"] for b in answer["bindings"]] == [p["name"] for p in cluster["pods"]]
    nodes = {n["name"]: n for n in cluster["nodes"]}
    for name, node in nodes.items():
        pods = [p for p, b in zip(cluster["pods"], answer["bindings"]) if b["node"] == name]
        assert sum(p["gpu_mem_gb"] for p in pods) <= node["gpu_mem_gb"]
        assert sum(p["tflops"] for p in pods) <= node["tflops"]
        busy = sum(p["requests"] * p["seconds_per_request"][node["gpu"]] for p in pods)
        assert answer["node_busy_s"][name] == pytest.approx(busy)
    inst = io.load(ext.to_instance(cluster))
    device = [list(nodes).index(b["node"]) for b in answer["bindings"]]
    share = [[float(j == r) for j in range(len(device))] for r in range(len(device))]
    judged = evaluate(inst, {"device": device, "share": share, "thresholds": []})
    assert judged.feasible and answer["busiest_node_s"] == pytest.approx(judged.objective)
    assert answer["optimal"] and answer["bound_s"] <= answer["busiest_node_s"] + 1e-6


# --- limits -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A service with small limits: a token, 16 KiB bodies, 5 s time limits."""
    folder = tmp_path_factory.mktemp("limited")
    (folder / "token").write_text(TOKEN + "\n")
    s = Server(folder, "--jobs", "1", "--token-file", str(folder / "token"), "--max-body", str(16 / 1024),
               "--max-time-limit", "5")
    yield s
    s.stop(signal.SIGKILL)


def test_token_is_required_and_compared(limited):
    assert limited.client().get("/problems").status_code == 401
    assert limited.client().get("/problems").headers["www-authenticate"] == "Bearer"
    assert limited.client("wrong-" + TOKEN).get("/problems").status_code == 401
    assert limited.client(TOKEN).get("/problems").status_code == 200
    assert limited.client().get("/healthz").status_code == 200  # liveness needs no token
    assert limited.client().post("/solve", json={}).status_code == 401  # before the body is read


def test_bodies_over_max_body_get_413_before_parsing(limited):
    c = limited.client(TOKEN)
    big = b'{"instance": "' + b"x" * 20_000 + b'"}'
    assert c.post("/validate", content=big).status_code == 413  # by Content-Length

    def chunks():
        for _ in range(40):
            yield b" " * 1000

    assert c.post("/validate", content=chunks()).status_code == 413  # streamed (chunked), counted as it comes
    bomb = gzip.compress(b'{"instance": "' + b" " * 10_000_000 + b'"}')
    assert len(bomb) < 16 * 1024
    answer = c.post("/validate", content=bomb, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 413 and "inflates" in answer.json()["detail"]
    packed = gzip.compress(json.dumps({"instance": _doc()}).encode())
    assert c.post("/validate", content=packed, headers={"Content-Encoding": "gzip"}).json()["valid"]
    assert c.post("/validate", content=b"not gzip", headers={"Content-Encoding": "gzip"}).status_code == 422
    assert c.post("/validate", content=packed, headers={"Content-Encoding": "br"}).status_code == 415


def test_time_limits_over_max_time_limit_are_refused_not_cut(limited):
    c = limited.client(TOKEN)
    answer = c.post("/solve", json={"instance": _doc(), "methods": ["largest"], "time_limit": 6})
    assert answer.status_code == 422
    assert answer.json()["detail"][0] == {"loc": ["body", "time_limit"], "path": "time_limit", "type": "value_error",
                                          "msg": "must be at most 5 s on this service (its --max-time-limit), got 6"}
    exp = {"name": "x", "problem": "placement", "preset": "small", "sizes": [3], "seeds": 1, "methods": ["largest"],
           "time_limit": 60}
    answer = c.post("/jobs", json={"kind": "experiment", "experiment": exp})
    assert answer.json()["detail"][0]["path"] == "experiment.time_limit"
    assert c.post("/solve", json={"instance": _doc(), "methods": ["largest"], "time_limit": 5}).status_code == 200


def test_a_full_queue_answers_429_with_retry_after(servers, slow_doc):
    s = servers("--jobs", "1", "--queue", "1")
    c = s.client()
    job = c.post("/jobs", json={"kind": "solve", "instance": slow_doc, "methods": ["milp"], "time_limit": 600})
    assert job.status_code == 202
    full = c.post("/solve", json={"instance": _doc(), "methods": ["largest"]})
    assert full.status_code == 429 and full.headers["retry-after"] == "1"
    assert c.post("/jobs", json={"kind": "solve", "instance": _doc()}).status_code == 429
    assert c.delete(f"/jobs/{job.json()['id']}").json()["status"] == "cancelled"
    assert c.post("/solve", json={"instance": _doc(), "methods": ["largest"]}).status_code == 200


@pytest.mark.parametrize("args,rule", [
    (["--host", "0.0.0.0"], "--host '0.0.0.0' is reachable from other machines: give --token-file"),
    (["--port", "70000"], "--port must be an integer 0..65,535, got 70000"),
    (["--jobs", "0"], "--jobs must be an integer 1..256, got 0"),
    (["--max-body", "0"], "--max-body must be a number of MB in (0, 1024], got 0.0"),
    (["--max-time-limit", "nan"], "--max-time-limit must be a number of seconds in (0, 86400], got nan"),
    (["--queue", "0"], "--queue must be an integer 1..100,000, got 0"),
    (["--token-file", "missing"], "--token-file missing does not exist"),
    (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "--jobs is the Dask cluster's own with --scheduler"),
    (["--store", "no/such/dir/jobs.sqlite"], "--store no/such/dir/jobs.sqlite cannot be used as an SQLite database"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, args, rule):
    done = subprocess.run(EDGEOPT + ["serve", "--port", "0", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {rule}"), done.stderr
    assert done.stderr.count("\n") == 1


def test_a_short_token_and_a_taken_store_are_refused(servers, tmp_path):
    (tmp_path / "short").write_text("abc")
    done = subprocess.run(EDGEOPT + ["serve", "--port", "0", "--token-file", "short"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "at least 16 printable ASCII characters" in done.stderr
    first = servers("--jobs", "1")
    done = subprocess.run(EDGEOPT + ["serve", "--port", "0", "--store", str(first.store)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "is in use by another edgeopt serve" in done.stderr, done.stderr


# --- restarts and shutdown --------------------------------------------------------------------------

@pytest.mark.slow
def test_sigkill_mid_job_then_restart_keeps_finished_results_and_marks_the_job_interrupted(servers, slow_doc):
    """Finished jobs answer with the same rows after the restart; the job that was running is ``interrupted``
    with exactly the rows it had finished, none twice; its workers died with the service."""
    first = servers("--jobs", "1")
    c = first.client()
    quick = c.post("/jobs", json={"kind": "compare", "instances": [_doc()], "methods": ["heuristic", "baseline"]})
    finished = _until(lambda: _done(c, quick.json()["id"]))
    plan = {"kind": "compare", "instances": [_doc(), slow_doc], "methods": ["milp"], "time_limit": 600}
    job = c.post("/jobs", json=plan).json()
    running = _until(lambda: (j := _running(c, job["id"])) and j["progress"]["done"] == 1 and j)
    workers = first.workers()
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    _until(lambda: not any(_alive(p) for p in workers), timeout=30)
    second = servers("--jobs", "1", store=first.store)
    assert "1 unfinished job marked interrupted" in second.wait_for("listening on")
    c = second.client()
    assert c.get(f"/jobs/{quick.json()['id']}").json() == finished
    after = c.get(f"/jobs/{job['id']}").json()
    assert after["status"] == "interrupted" and after["progress"] == {"done": 1, "total": 2}
    assert after["rows"] == running["rows"] and len(after["rows"]) == 1 and after["finished"] is not None
    assert second.stop() == 143
    with sqlite3.connect(first.store) as db:  # the service holds the file while it runs
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT idx) FROM rows WHERE job = ?", (job["id"],)).fetchone() \
            == (1, 1)


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_shut_down_cleanly(servers, slow_doc, sig, code):
    """Exit 130 / 143; the running job is marked interrupted in the store; no worker outlives the service."""
    s = servers("--jobs", "1")
    c = s.client()
    job = c.post("/jobs", json={"kind": "solve", "instance": slow_doc, "methods": ["milp"], "time_limit": 600}).json()
    _until(lambda: _running(c, job["id"]))
    workers = s.workers()
    assert s.stop(sig) == code
    assert "1 unfinished job marked interrupted" in "".join(s.lines)
    assert not any(_alive(p) for p in workers)
    with sqlite3.connect(s.store) as db:
        assert db.execute("SELECT status FROM jobs WHERE id = ?", (job["id"],)).fetchone() == ("interrupted",)


# --- fuzzing from the OpenAPI document --------------------------------------------------------------

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """The service fuzzed: 2 s time limits and a queue of 4, so that the jobs it is sent stay short and few."""
    s = Server(tmp_path_factory.mktemp("fuzzed"), "--jobs", "1", "--max-time-limit", "2", "--queue", "4")
    yield s
    s.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def api_schema(fuzzed):
    return schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")


OPERATIONS = [("GET", "/problems"), ("GET", "/problems/{problem}/schema"), ("POST", "/validate"), ("POST", "/solve"),
              ("POST", "/jobs"), ("GET", "/jobs/{job_id}"), ("DELETE", "/jobs/{job_id}"), ("GET", "/healthz"),
              ("GET", "/metrics")]


@pytest.mark.slow
@pytest.mark.parametrize("method,path", OPERATIONS)
def test_fuzzed_requests_get_no_5xx_and_every_answer_matches_the_schema(api_schema, fuzzed, method, path):
    """Requests made from /openapi.json, valid and invalid (100 per operation, the same ones every run): no 5xx,
    every status, header, content type and body as documented. Left out: ``positive_data_acceptance`` (an
    instance the schema allows may fail a cross-check, e.g. a shape or a sum: 422 by design) and
    ``negative_data_rejection`` (the instance models coerce as pydantic's lax mode does, e.g. ``false`` for a
    number: the files' rule, which the service keeps)."""
    from hypothesis import given, strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import negative_data_rejection, positive_data_acceptance

    operation = api_schema[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=100, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        case.call_and_validate(base_url=fuzzed.url, timeout=120,
                               excluded_checks=[negative_data_rejection, positive_data_acceptance])

    fuzz()
    sent = [line for line in fuzzed.client().get("/metrics").text.splitlines()
            if line.startswith(f'edgeopt_requests_total{{route="{path}",method="{method}"')]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in sent) >= 1  # the cases reached the service


# --- Dask ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_with_a_dask_scheduler_the_work_runs_on_the_cluster(servers):
    """The same rows as the local workers; a job runs to done; the health says where the work goes."""
    with running_dask(workers=1) as (address, _):
        s = servers("--scheduler", address)
        c = s.client()
        assert c.get("/healthz").json()["executor"] == "dask"
        rows = c.post("/solve", json={"instance": _doc(), "methods": ["heuristic", "baseline"]}).json()
        local = [solve_row(r) for r in [registry.problem("placement").method(m["method"]).run(io.load(PLACEMENT))
                                        for m in rows]]
        assert [{k: v for k, v in r.items() if k != "wall_s"} for r in rows] == \
            [{k: v for k, v in json.loads(io.dumps(r)).items() if k != "wall_s"} for r in local]
        job = c.post("/jobs", json={"kind": "compare", "instances": [_doc()], "methods": ["all"]}).json()
        assert _until(lambda: _done(c, job["id"]))["status"] == "done"
        assert s.stop() == 143


@pytest.mark.slow
def test_a_dask_scheduler_that_cannot_be_reached_is_one_line_and_exit_3(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    done = subprocess.run(EDGEOPT + ["serve", "--port", "0", "--scheduler", address], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 3 and done.stderr.startswith(f"error: cannot reach the Dask scheduler at {address}")
    assert done.stderr.count("\n") == 1, done.stderr
