"""The ``dagsched`` system over time (``edgeopt simulate dagsched``): job arrivals, edge queues that carry their
backlog over, edge failures."""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from edgeopt.model import InputError
from edgeopt.problems.dagsched import Data, Instance, Solution, placement
from edgeopt.problems.dagsched.generator import _EDGES, FAMILIES, _family_job, _layered_job, _paper_data

DROP_REASONS = ("edge-failure", "timeout")


class Simulation:
    """Liao et al. over time: jobs arrive, edge queues carry their backlog over, edges fail and drop their queues.

    Each interval of ``interval_s`` seconds brings Poisson(``rate``) jobs, drawn as the preset's generator draws
    them (paper: a uniformly chosen family; layered: ``tasks`` sub-tasks), each with its device's channel to the
    edges; they arrive at the interval's start. The instance holds the carried jobs and the new ones; the
    carried sub-tasks are fixed (``data.fixed``) where they were placed, each edge queue's backlog as its
    prefix, so the policy plans the new jobs around them. A sub-task is done when it finishes within the
    interval; one still running at its end goes on (no preemption): it heads its queue in the next interval with
    its remaining time as its execution time and its input uploaded. A job is served when its sink is done; its latency runs from its arrival to its result back at the device. A carried job
    keeps only its sub-tasks not done: they are closed under successors (nothing starts before its
    predecessors finish), so they keep one sink and fixing them fixes all their predecessors in the instance;
    the outputs of done predecessors are taken to be waiting where they are needed.

    Every edge fails in an interval with probability ``failure``, at a uniform moment of it, unknown to the
    policy, and is repaired for the next interval. It drops its queue: every job with a sub-task on that edge
    not finished by the failure is dropped (reason ``edge-failure``) with its other sub-tasks (their slots
    elsewhere are not reclaimed within the interval); a job not served within ``patience`` intervals of its
    arrival is dropped (``timeout``). Cost is counted for each sub-task when it is done (of a dropped job:
    when done before the drop), so a sub-task running across intervals is paid once.
    """

    PLOTS = (("decision", "objective", "weighted sum (referee)"), ("latency", "mean_s", "mean job latency, s"),
             ("service", "cost", "cost of work done, $"), ("service", "served", "jobs served"),
             ("service", "carried", "jobs carried over"), ("service", "dropped", "jobs dropped"))
    CDF = ("latency", "values", "job latency from arrival, s")
    SUMMARY = {"weighted_sum": ("decision", "objective", "sum"), "latency_total_s": ("latency", "total_s", "sum"),
               "interval_mean_latency_s": ("latency", "mean_s", "mean"), "cost": ("service", "cost", "sum"), "served": ("service", "served", "sum"),
               "dropped": ("service", "dropped", "sum"), "carried_at_end": ("service", "carried", "last")}

    def __init__(self, preset: str = "paper", seed: int = 0, rate: Annotated[float, Field(gt=0, le=1e4)] = 5.0,
                 interval_s: Annotated[float, Field(gt=0, le=1e6)] = 0.5,
                 failure: Annotated[float, Field(ge=0, le=1)] = 0.1,
                 patience: Annotated[int, Field(ge=1, le=10_000)] = 6,
                 bandwidth_mhz: Annotated[float, Field(gt=0, le=1e6)] = 6.0,
                 gamma: Annotated[float, Field(ge=0, le=1)] = 0.5,
                 t_max: Annotated[float, Field(gt=0, le=1e9)] | None = None,
                 tasks: Annotated[int, Field(ge=2, le=1000)] = 10):
        if preset not in ("paper", "layered"):
            raise InputError("--preset", f"must be paper or layered to simulate dagsched: {preset!r} is one fixed job")
        self.preset, self.seed, self.rate, self.interval_s = preset, seed, rate, interval_s
        self.failure, self.patience, self.tasks = failure, patience, tasks
        self.options = {"bandwidth_mhz": bandwidth_mhz, "t_max": t_max, "gamma": gamma}
        self.jobs: dict[int, dict] = {}  # id -> {"arrival", "job", "left": not done, "running": {j: s left}, "gain"}
        self.carried: list[int] = []  # ids of the jobs in the system, in arrival order
        self.queues: list[list[tuple[int, int]]] = [[] for _ in _EDGES]  # per edge, (id, sub-task) in run order
        self.on_cloud: list[tuple[int, int]] = []
        self.ended: dict[int, tuple[str, int]] = {}  # id -> (served | a drop reason, interval)
        self.in_instance: list[int] = []

    @staticmethod
    def largest(preset: str, rate: float, patience: int, tasks: int, **_) -> dict:
        """Generator arguments of the largest instance an interval can hold (for ``instance_bytes``): the jobs of
        ``patience`` intervals of arrivals, each interval's at most the mean plus ten standard deviations."""
        return {"preset": preset, "size": int(patience * (rate + 10 * rate**0.5 + 10)), "tasks": tasks}

    def _arrivals(self, t: int) -> list[int]:
        rng = np.random.default_rng([self.seed, t, 0])
        n = int(rng.poisson(self.rate))
        if not n:
            return []
        jobs = ([_family_job(str(f), rng) for f in rng.choice(list(FAMILIES), size=n)] if self.preset == "paper"
                else [_layered_job(k, self.tasks, rng) for k in range(n)])
        gain = _paper_data(jobs, self.options["bandwidth_mhz"], None, 0.5, rng)[0]["radio"]["gain"]
        first = len(self.jobs)
        for k, (job, row) in enumerate(zip(jobs, gain)):
            self.jobs[first + k] = {"arrival": t, "job": job, "left": list(range(len(job["tasks"]))),
                                 "running": {}, "gain": row}
        return list(range(first, first + n))

    def _remaining(self, ident: int) -> dict:
        """The job's sub-tasks not done yet, renumbered in their order, with the edges among them; a running one
        with its input uploaded and its remaining time as its execution time on every server."""
        rec = self.jobs[ident]
        job, new, running = rec["job"], {j: k for k, j in enumerate(rec["left"])}, rec["running"]
        tasks = [{**job["tasks"][j], "in_bits": 0.0, "exec_s": [running[j]] * (len(_EDGES) + 1)} if j in running
                 else job["tasks"][j] for j in rec["left"]]
        edges = [{**e, "src": new[e["src"]], "dst": new[e["dst"]]} for e in job["edges"]
                 if e["src"] in new and e["dst"] in new]
        return {"name": f"a{rec['arrival']}-{ident}-{job['name']}", "tasks": tasks, "edges": edges}

    def instance(self, t: int) -> Instance | None:
        self.in_instance = self.carried + self._arrivals(t)
        if not self.in_instance:
            return None
        o = self.options  # the generator's servers and cloud; each job keeps the channel drawn at its arrival
        data = _paper_data([self._remaining(i) for i in self.in_instance], o["bandwidth_mhz"], o["t_max"], o["gamma"],
                           np.random.default_rng(0))[0]
        data["radio"]["gain"] = [self.jobs[i]["gain"] for i in self.in_instance]
        if self.carried:
            pos = {i: k for k, i in enumerate(self.in_instance)}

            def named(ident: int, j: int) -> list[int]:
                return [pos[ident], self.jobs[ident]["left"].index(j)]

            data["fixed"] = {"prefix": [[named(i, j) for i, j in q] for q in self.queues],
                             "cloud": [named(i, j) for i, j in self.on_cloud]}
        meta = {"simulation": "edgeopt.systems.dagsched.Simulation", "preset": self.preset, "seed": self.seed,
                "interval": t, "carried_jobs": len(self.carried)}
        return Instance(name=f"{self.preset}-sim-s{self.seed}-i{t}", meta=meta, data=Data.model_validate(data))

    def fallback(self, instance: Instance) -> Solution:
        """Without a runnable decision the fixed sub-tasks stay where they are and every other goes to the cloud."""
        d, g = instance.data, instance.data.graph
        prefix = d.fixed.prefix if d.fixed is not None and d.fixed.prefix else [[] for _ in range(g.N)]
        queued = {g.index(i, j) for q in prefix for i, j in q}
        return Solution(order=[list(q) for q in prefix],
                        cloud=[list(g.name(t)) for t in range(g.T) if t not in queued])

    def _runnable(self, instance: Instance, solution: Solution):
        """(server of each sub-task, queues, start and finish times) if the decision can be carried out, else None.

        Carried out means: every sub-task on a server that runs its modality, the fixed sub-tasks where they are
        fixed, no deadlock. A missed T_max is not a reason to refuse a decision (the referee reports it).
        """
        d, g = instance.data, instance.data.graph
        try:
            where, queues = placement(instance, solution)
        except InputError:
            return None
        if not all(g.ok[t, n] for t, n in where.items()):
            return None
        if d.fixed is not None:
            if any(queues[n][:len(pre)] != [g.index(i, j) for i, j in pre] for n, pre in enumerate(d.fixed.prefix)):
                return None
            if any(where[g.index(i, j)] != g.cloud for i, j in d.fixed.cloud):
                return None
        start, finish, stuck = g.times(where, queues)
        return None if stuck else (where, queues, start, finish)

    def advance(self, t: int, instance: Instance | None, solution: Solution | None) -> dict[str, dict]:
        """Run the interval: serve, carry over or drop every job in it, and record why."""
        ids, arrivals = self.in_instance, sum(self.jobs[i]["arrival"] == t for i in self.in_instance)
        service = {"arrivals": int(arrivals), "jobs": len(ids), "served": 0, "carried": 0, "dropped": 0,
                   **dict.fromkeys(DROP_REASONS, 0), "cost": 0.0, "failed_edges": 0, "refused": False,
                   "carried_subtasks": 0}
        latency: list[float] = []
        if instance is not None:
            run = self._runnable(instance, solution)
            if run is None:
                service["refused"] = True  # carried out as the fallback instead
                run = self._runnable(instance, self.fallback(instance))
            where, queues, start, finish = run
            g, L = instance.data.graph, self.interval_s
            rng = np.random.default_rng([self.seed, t, 1])
            down, at = rng.random(g.N) < self.failure, rng.uniform(0, L, g.N)
            service["failed_edges"] = int(down.sum())
            dropped_at = np.full(len(ids), np.inf)  # per job in the instance: when its queue was dropped
            for n in np.flatnonzero(down):
                for s in queues[n]:
                    if finish[s] > at[n]:
                        dropped_at[g.job[s]] = min(dropped_at[g.job[s]], at[n])
            done = finish <= np.minimum(L, dropped_at[g.job])
            service["cost"] = float(g.cost[np.flatnonzero(done), [where[s] for s in np.flatnonzero(done)]].sum())

            def original(s: int) -> tuple[int, int]:  # (job id, its sub-task) of the instance's sub-task s
                ident = ids[g.job[s]]
                return ident, self.jobs[ident]["left"][g.local[s]]

            carried = []
            for k, ident in enumerate(ids):
                rec, sink = self.jobs[ident], g.sink[k]
                if np.isfinite(dropped_at[k]):
                    self._end(ident, "edge-failure", t, service)
                elif done[sink]:
                    latency.append(float((t - rec["arrival"]) * L + finish[sink] + g.ret[sink, where[sink]]))
                    self._end(ident, "served", t, service)
                elif t - rec["arrival"] + 1 >= self.patience:
                    self._end(ident, "timeout", t, service)
                else:
                    carried.append(ident)
            keep = set(carried)
            self.queues = [[original(s) for s in q if not done[s] and ids[g.job[s]] in keep] for q in queues]
            self.on_cloud = [original(s) for s in range(g.T)
                             if where[s] == g.cloud and not done[s] and ids[g.job[s]] in keep]
            for k, ident in enumerate(ids):
                if ident in keep:
                    span = [s for s in range(g.offset[k], g.offset[k] + instance.data.jobs.sizes[k]) if not done[s]]
                    self.jobs[ident]["running"] = {original(s)[1]: float(finish[s] - L) for s in span if start[s] < L}
                    self.jobs[ident]["left"] = [original(s)[1] for s in span]
            self.carried = carried
            service["carried"] = len(carried)
            service["carried_subtasks"] = sum(len(self.jobs[i]["left"]) for i in carried)
        return {"service": service,
                "latency": {"values": latency, "total_s": float(sum(latency)),
                            "mean_s": float(np.mean(latency)) if latency else None,
                            "max_s": max(latency) if latency else None}}

    def _end(self, ident: int, outcome: str, t: int, service: dict) -> None:
        """A job leaves the system, once: served or dropped for a reason."""
        self.ended[ident] = (outcome, t)
        service[outcome] += 1
        if outcome != "served":
            service["dropped"] += 1
