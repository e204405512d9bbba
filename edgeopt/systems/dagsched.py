"""The ``dagsched`` system over time and as a decision process.

``Simulation`` (``edgeopt simulate dagsched``): job arrivals, edge queues that carry their backlog over, edge
failures. ``DecisionProcess`` (what ``edgeopt.envs`` and the learned methods run): the seed's agents (Liao et
al. §4.1–4.2) scheduling one instance's jobs, in plain NumPy; its episodes come from the generator or from the
Simulation's intervals (``SimulationEpisodes``).

The decision process: one agent per job. At each step every agent whose job still has sub-tasks to place picks
an action ``a_i = (L_ij, alpha_ij)``: one of its sub-tasks and a server; the joint action is applied to a
``Dispatcher`` in agent order (the same partial schedule every heuristic builds, so the schedule the
agents end with is exactly what the referee evaluates). An agent's observation is the seed's
``s_i = (P_i, S, Task_i)`` before encoding: the job's progress vector, every server's features (speed,
price, modalities, rates to the job's device, current queueing delay) and the job's DAG (node features and
adjacency, for a GCN). ``action_mask`` marks the ready, modality-valid pairs.

Rewards, per agent and step (``reward=``):

- ``paper``: the seed's ``r_i = -eta1 - eta2 + q theta - eta3 - gamma (TR + T_com) - (1 - gamma) Cost`` with
  ``eta1 = vartheta * (unplaced predecessors)``, ``eta2 = vartheta * (modality mismatch)``, ``q = 1`` for a valid
  action, ``eta3 = vartheta * max(0, EN - T_max)``; an invalid action changes nothing (it is only penalized).
- ``objective``: minus the growth of the agent's job term ``gamma T_i + (1 - gamma) Cost_i`` of the partial
  schedule; summed over an episode and the agents it is exactly minus the referee's objective (a sink's return
  to the device is paid when the sink is placed). Invalid actions change nothing and pay 0.

An episode that reaches ``max_steps`` (only possible with invalid actions) is truncated: the sub-tasks left
go to the cloud (or, without one, to their first modality-feasible server), paid as if chosen, so that every
episode ends with a complete schedule for the referee.

The observation layout (``Layout``) is fixed per environment and recorded in every policy file: a policy
runs on an instance whose jobs have at most ``tasks`` sub-tasks and whose servers match.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Literal, get_args

import numpy as np
from pydantic import Field

from edgeopt.heuristics.dagsched import Dispatcher
from edgeopt.limits import AGENTS_MAX, Count
from edgeopt.model import InputError
from edgeopt.problems.dagsched import Data, Instance, Solution, evaluate, placement
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


# --- the decision process -----------------------------------------------------------------------------

LAYOUT_VERSION = 1
ALGORITHMS = ("ucb-coma", "coma", "mappo", "maddpg")  # what ``edgeopt train dagsched`` trains
Reward = Literal["paper", "objective"]  # the seed's shaped reward, or minus the referee's objective as it accrues
REWARDS = get_args(Reward)
# Units that bring the features to order 1 on the seed's figures.
GCYCLES, MBIT, KBIT, GHZ, PRICE = 1e9, 1e6, 1e4, 1e10, 0.01
PAPER = {"vartheta": 1.0, "theta": 2.0}  # Table 2: the penalty factor (rho / vartheta) and the valid-action bonus


@dataclass(frozen=True)
class Layout:
    """Shapes and feature order of an observation: what a policy file must match."""

    tasks: int  # sub-task slots per job (J_max)
    servers: int  # edge servers + cloud
    modalities: tuple[str, ...]
    cloud: bool = True  # the last server is the (unqueued, multimodal) cloud
    version: int = LAYOUT_VERSION
    network = "graph"  # the actor's family (edgeopt.learn.nets): the seed's GCN

    @property
    def actions(self) -> int:
        return self.tasks * self.servers

    @property
    def node_features(self) -> int:
        # present, placed, ready, C, D, R, modality one-hot, duration on each server, finish time
        return 7 + len(self.modalities) + self.servers

    @property
    def server_features(self) -> int:
        # speed, price, modalities, uplink and downlink to the job's device, queueing delay, is cloud
        return 6 + len(self.modalities)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        J, S = self.tasks, self.servers
        return {"progress": (J,), "servers": (S, self.server_features), "nodes": (J, self.node_features),
                "adjacency": (J, J), "action_mask": (J * S,)}

    def to_json(self) -> dict:
        return {**asdict(self), "modalities": list(self.modalities)}

    @classmethod
    def from_json(cls, doc: dict) -> "Layout":
        return cls(int(doc["tasks"]), int(doc["servers"]), tuple(doc["modalities"]), bool(doc["cloud"]),
                   int(doc["version"]))

    @classmethod
    def of(cls, instance: Instance, tasks: int | None = None) -> "Layout":
        """The layout an instance needs (``tasks`` slots at least)."""
        d = instance.data
        mods = sorted(set(d.jobs.modality) | {m for s in d.servers for m in s.modalities})
        return cls(max(max(d.jobs.sizes), tasks or 0), d.graph.S, tuple(mods), d.cloud is not None)

    def misfit(self, instance: Instance) -> str | None:
        """Why the instance does not fit this layout (None when it does)."""
        d = instance.data
        if d.graph.S != self.servers:
            return f"the policy was trained for {self.servers} servers (cloud included), the instance has {d.graph.S}"
        if (d.cloud is not None) != self.cloud:
            return f"the policy was trained {'with' if self.cloud else 'without'} a cloud, the instance has " \
                   f"{'one' if d.cloud is not None else 'none'}"
        if max(d.jobs.sizes) > self.tasks:
            return f"the policy takes jobs of at most {self.tasks} sub-tasks, the instance has {max(d.jobs.sizes)}"
        unknown = (set(d.jobs.modality) | {m for s in d.servers for m in s.modalities}) - set(self.modalities)
        if unknown:
            return f"the policy knows the modalities {list(self.modalities)}, not {sorted(unknown)}"
        return None


def paper_layout() -> Layout:
    """The layout of the paper, edge-share and layered presets up to the five families' largest job."""
    return Layout(max(len(t) for t, _ in FAMILIES.values()), 4, ("audio", "image", "multimodal", "text"))


class DecisionProcess:
    """The jobs of one instance scheduled by their agents; ``reset`` starts an episode on an instance."""

    sequential = True  # agents may act one at a time (the Gymnasium view)

    def __init__(self, layout: Layout, agents: int, reward: str = "paper", max_steps: int | None = None):
        if reward not in REWARDS:
            raise InputError("reward", f"must be one of {', '.join(REWARDS)}, got {reward!r}")
        self.layout, self.n_agents, self.reward = layout, int(agents), reward
        self.max_steps = max_steps if max_steps is not None else 4 * layout.tasks
        self.instance: Instance | None = None

    @classmethod
    def for_instance(cls, layout: Layout, instance: Instance) -> "DecisionProcess":
        """The process a policy solves ``instance`` with: an agent per job."""
        return cls(layout, len(instance.data.jobs), "objective")

    # --- episode ------------------------------------------------------------------------------------

    def reset(self, instance: Instance) -> None:
        lay, d = self.layout, instance.data
        reason = lay.misfit(instance)
        if reason:
            raise InputError("instance", reason)
        if len(d.jobs) > self.n_agents:
            raise InputError("instance", f"has {len(d.jobs)} jobs, the environment {self.n_agents} agents")
        self.instance = instance
        self.disp = disp = Dispatcher(instance)
        g = self.g = disp.g
        I, J, S = len(d.jobs), lay.tasks, lay.servers
        self.jobs = I
        self.steps = 0
        self.truncated = False
        self.paid = np.zeros(self.n_agents)  # objective reward paid so far per agent
        # static per-job arrays, padded to the layout
        mod = {m: k for k, m in enumerate(lay.modalities)}
        self.present = np.zeros((I, J), dtype=bool)
        self.slot = np.full((I, J), -1)  # sub-task index t of each slot
        static = np.zeros((self.n_agents, J, lay.node_features), dtype=np.float32)  # padded to every agent
        adj = np.zeros((self.n_agents, J, J), dtype=np.float32)
        jb = d.jobs
        job, local = g.job, g.local  # every sub-task's (job, slot): one scatter per feature
        self.present[job, local] = True
        self.slot[job, local] = np.arange(g.T)
        static[job, local, 0] = 1.0
        static[job, local, 3] = jb.cycles / GCYCLES
        static[job, local, 4] = jb.in_bits / MBIT
        static[job, local, 5] = jb.out_bits / KBIT
        static[job, local, 6 + np.array([mod[m] for m in jb.modality])] = 1.0
        k = 6 + len(lay.modalities)
        static[job, local, k:k + S] = g.dur
        adj[jb.edge_job, jb.src, jb.dst] = 1.0
        self.static_nodes, self.adjacency = static, adj
        f = np.array([s.f_hz for s in d.servers] + ([d.cloud.f_hz] if d.cloud else []))
        price = np.array([s.price for s in d.servers] + ([d.cloud.price] if d.cloud else []))
        mods = np.zeros((S, len(lay.modalities)), dtype=np.float32)
        for n, s in enumerate(d.servers):
            mods[n, [mod[m] for m in s.modalities]] = 1.0
        if d.cloud is not None:
            mods[-1] = 1.0
        N = len(d.servers)
        ul, dl = (d.rates.ul_bps, d.rates.dl_bps) if d.rates is not None else d.radio.rates
        srv = np.zeros((self.n_agents, S, lay.server_features), dtype=np.float32)
        srv[:I, :, 0] = f / GHZ
        srv[:I, :, 1] = price / PRICE
        srv[:I, :, 2:2 + len(lay.modalities)] = mods
        k = 2 + len(lay.modalities)
        srv[:I, :N, k], srv[:I, :N, k + 1] = ul / MBIT, dl / MBIT
        if d.cloud is not None:
            srv[:I, N:, k], srv[:I, N:, k + 1] = d.cloud.ul_bps / MBIT, d.cloud.dl_bps / MBIT
        srv[:I, N:, k + 3] = 1.0
        self.static_servers = srv
        self._queue_col = k + 2
        self.idx = np.where(self.present, self.slot, 0)  # a real sub-task index in every slot, for gathers
        self.ok_slots = g.ok[self.idx] & self.present[..., None]  # (I, J, S): modality-valid, real sub-tasks
        left = np.bincount(job, minlength=I) - np.bincount(job[list(disp.where)], minlength=I)
        self.left = left.tolist() + [0] * (self.n_agents - I)  # sub-tasks not yet placed, per job
        self.judged: list[tuple[Instance, dict]] = []  # what the last step completed: the schedule, at the end
        self.cost = np.zeros(self.n_agents)  # cost of the job's placed sub-tasks
        for t, s in disp.where.items():
            self.cost[g.job[t]] += g.cost[t, s]
        self._obs = None  # observations of the current state, once computed

    @property
    def live(self) -> list[int]:
        """Agents whose job still has sub-tasks to place, in agent order."""
        return [i for i, n in enumerate(self.left) if n > 0] if self.instance is not None else []

    @property
    def done(self) -> bool:
        return len(self.disp.where) == self.g.T

    def mask(self, i: int) -> np.ndarray:
        """(tasks * servers,) bool: ready sub-tasks of job i on servers that run their modality."""
        return self.observe_all()["action_mask"][i].astype(bool)

    def observe(self, i: int) -> dict[str, np.ndarray]:
        """Agent i's observation (zeros for an agent without a job)."""
        return {k: v[i] for k, v in self.observe_all().items() if k != "alive"}

    def observe_all(self) -> dict[str, np.ndarray]:
        """Every agent's observation stacked on a leading agent axis, with ``alive`` (job not finished); computed
        once per step in whole-array operations (the arrays are shared: copy before changing them)."""
        if self._obs is not None:
            return self._obs
        disp, I = self.disp, self.jobs
        finish = disp.finish[self.idx]  # (I, J), NaN where not placed
        placed = ~np.isnan(finish) & self.present
        ready = disp.is_ready[self.idx] & self.present
        nodes = self.static_nodes.copy()
        nodes[:I, :, 1], nodes[:I, :, 2] = placed, ready
        nodes[:I, :, -1] = np.where(placed, finish, 0.0)
        servers = self.static_servers.copy()
        servers[:I, :len(disp.tail), self._queue_col] = disp.tail
        mask = np.zeros((self.n_agents, self.layout.actions), dtype=np.int8)
        mask[:I] = (ready[..., None] & self.ok_slots).reshape(I, -1)
        out = {"progress": nodes[:, :, 1].copy(), "servers": servers, "nodes": nodes,
               "adjacency": self.adjacency.copy(), "action_mask": mask, "alive": np.array(self.left) > 0}
        self._obs = out
        return out

    # --- acting -------------------------------------------------------------------------------------

    def _term(self, i: int) -> float:
        """gamma T_i + (1 - gamma) Cost_i of job i in the partial schedule."""
        return self.disp.gamma * self.disp.latency(i) + (1 - self.disp.gamma) * self.cost[i]

    def _place(self, i: int, t: int, s: int) -> float:
        """Place sub-task t of agent i on server s; the reward of that placement."""
        disp, g = self.disp, self.g
        st, en = disp.place(t, s)
        self.left[i] -= 1
        self.cost[i] += g.cost[t, s]
        self._obs = None
        if self.reward == "objective":
            return 0.0
        tmax = disp.t_max
        late = PAPER["vartheta"] * max(0.0, en - tmax) if tmax is not None else 0.0
        return PAPER["theta"] - late - disp.gamma * g.dur[t, s] - (1 - disp.gamma) * g.cost[t, s]

    def _invalid(self, i: int, j: int, s: int) -> float:
        """The seed's penalties for an action that is not a ready sub-task on a server of its modality."""
        if self.reward == "objective":
            return 0.0
        t = self.slot[i, j] if j < self.layout.tasks else -1
        if t < 0 or t in self.disp.where:
            return -PAPER["vartheta"]  # no such sub-task, or already placed: counted as one violation
        left = sum(1 for k, _ in self.g.preds[t] if k not in self.disp.where)
        return -PAPER["vartheta"] * (left + (not self.g.ok[t, s]))

    def step(self, actions: dict[int, int]) -> dict[int, float]:
        """Apply the agents' actions (flat ``sub-task slot * servers + server``) in agent order; their rewards.

        Agents without a job left or missing from ``actions`` do nothing this step.
        """
        S = self.layout.servers
        self._obs = None
        rewards = {i: 0.0 for i in self.live}
        for i in sorted(actions):
            if i not in rewards:
                continue
            a = int(actions[i])
            j, s = divmod(a, S)
            t = self.slot[i, j] if 0 <= j < self.layout.tasks else -1
            if 0 <= a < self.layout.actions and t >= 0 and t in self.disp.ready and self.g.ok[t, s]:
                rewards[i] += self._place(i, t, s)
            else:
                rewards[i] += self._invalid(i, j, s)
        self.steps += 1
        if not self.done and self.steps >= self.max_steps:
            self.truncated = True
            g = self.g
            while self.disp.ready:
                t = min(self.disp.ready)
                i = int(g.job[t])
                s = g.cloud if g.cloud is not None else int(np.flatnonzero(g.ok[t])[0])
                rewards[i] = rewards.get(i, 0.0) + self._place(i, t, s)
        if self.reward == "objective":
            for i in rewards:
                term = self._term(i)
                rewards[i] = -(term - self.paid[i])
                self.paid[i] = term
        self.judged = [(self.instance, self.outcome())] if self.done else []
        return rewards

    # --- the end ------------------------------------------------------------------------------------

    def solution(self) -> Solution:
        return self.disp.solution()

    def claimed(self) -> float:
        """The schedule's objective as the Dispatcher computed it (the referee recomputes it)."""
        return float(self.disp.objective())

    def outcome(self) -> dict:
        """What the referee says of the finished schedule (``info`` at the episode's end)."""
        ev = evaluate(self.instance, self.solution())
        return {"objective": ev.objective, "feasible": ev.feasible, "violations": len(ev.violations),
                "truncated": self.truncated, "instance": self.instance.name}


def paper_reward(instance: Instance, solution: Solution) -> float:
    """The seed's reward summed over a complete schedule, as the environment pays it to agents that only take
    valid actions: ``sum_t theta - vartheta max(0, EN_t - T_max) - gamma (TR_t + T_com_t) - (1 - gamma) Cost_t``
    with the referee's finish times (so any method's schedule gets the learners' reward, for the figures)."""
    d, g = instance.data, instance.data.graph
    where, queues = placement(instance, solution)
    _, finish, _ = g.times(where, queues)
    t = np.fromiter(where, dtype=int, count=len(where))
    s = np.array([where[x] for x in t], dtype=int)
    late = np.maximum(0.0, finish[t] - d.t_max_s) if d.t_max_s is not None else np.zeros(len(t))
    return float((PAPER["theta"] - PAPER["vartheta"] * late - d.gamma * g.dur[t, s] - (1 - d.gamma) * g.cost[t, s]).sum())


# --- episodes ---------------------------------------------------------------------------------------

def optimum_method(instance: Instance) -> str:
    """The exact method whose optimum environments put in ``info``."""
    return "cpsat"


class SimulationEpisodes:
    """Episodes that are the intervals of one simulated run (``edgeopt simulate dagsched``): each episode
    schedules one interval's jobs behind the carried backlog (fixed sub-tasks, not agents), and its schedule is
    then carried out (failures, drops, backlog) before the next interval is drawn. A reset with a seed starts
    a new run with that seed; idle intervals are skipped. The rewards pay for the interval's new jobs; the
    carried jobs' share of the referee's objective (``info``) was fixed before any decision."""

    def __init__(self, preset: str, max_jobs: int, params: dict):
        self.make = lambda seed: Simulation(preset=preset, seed=seed, **params)
        self.max_jobs, self.system, self.t = max_jobs, None, 0

    def __call__(self, seed: int, restart: bool) -> Instance:
        if restart or self.system is None:
            self.system, self.t = self.make(seed), 0
        while True:
            instance = self.system.instance(self.t)
            if instance is not None:
                break
            self.system.advance(self.t, None, None)
            self.t += 1
        if len(instance.data.jobs) > self.max_jobs:
            raise InputError("max_jobs", f"interval {self.t} holds {len(instance.data.jobs)} jobs (carried ones "
                                         f"included), more than max_jobs = {self.max_jobs} agents: raise it")
        return instance

    def finish(self, instance: Instance, solution: Solution) -> dict:
        """Carry the episode's schedule out in the simulation; what happened to the interval's jobs."""
        service = self.system.advance(self.t, instance, solution)["service"]
        self.t += 1
        return {"interval": self.t - 1, **{k: service[k] for k in ("served", "dropped", "carried", "failed_edges")}}


def make_process(preset: str | None = None, size: int | None = None, reward: Reward = "paper",
                 max_steps: Count | None = None, source: Literal["generator", "simulation"] = "generator",
                 max_jobs: Annotated[int, Field(ge=1, le=AGENTS_MAX)] = 64, **options):
    """(decision process, draw): ``draw(seed)`` is an episode's instance from the generator (``preset``, ``size``,
    generator ``options``); the layout is the paper's (the presets' largest job) unless ``tasks`` asks for more.

    ``source="simulation"``: the episodes are the intervals of ``edgeopt simulate dagsched`` (``options`` are the
    simulation's parameters; ``max_jobs`` agents, the jobs of an interval with the carried ones first), and
    ``draw`` is a ``SimulationEpisodes``.
    """
    from edgeopt import registry

    registry.check_values(make_process, {"reward": reward, "max_steps": max_steps, "source": source,
                                         "max_jobs": max_jobs}, registry.option_flag)
    prob = registry.problem("dagsched")
    preset = preset or "paper"
    if source == "simulation":
        from edgeopt.simulation import _build

        if size is not None:
            raise InputError("--size", "is set by the simulation's arrivals (rate), not by --size")
        _build(Simulation, prob, preset, 0, options)  # bad parameters: exit 2 here
        layout = paper_layout() if options.get("tasks") is None else Layout(
            max(paper_layout().tasks, int(options["tasks"])), 4, paper_layout().modalities)
        return DecisionProcess(layout, int(max_jobs), reward, max_steps), SimulationEpisodes(preset, int(max_jobs),
                                                                                             options)
    if preset == "heft":
        raise InputError("--preset", "heft is one fixed job on processors without a cloud: no episodes to draw")
    probe = prob.generate(preset, size, 0, **options)  # a bad option is an input error here, once
    base = paper_layout()
    layout = Layout(max(base.tasks, max(probe.data.jobs.sizes)), base.servers, base.modalities)
    process = DecisionProcess(layout, len(probe.data.jobs), reward, max_steps)

    def draw(seed: int) -> Instance:
        return prob.generate(preset, size, seed, **options)

    return process, draw
