"""The ``offload`` system over time and as a decision process (TS-MITO, seed 000 §3).

``Simulation`` (``edgeopt simulate offload``): time slots of ``slot_s`` seconds. The users stand where the preset's
generator put them (its path loss and shadowing, drawn once for the seed); in every slot each user's channel to
every edge fades (block fading: the path-loss gain times a Rayleigh power draw, Exp(1), per slot), prompts arrive
per user (Bernoulli(``rate``): at most one per slot; or Poisson(``rate``)), each with its own CLIP alignment to
every edge's model and its own video size, drawn as the generator draws them. A user holding prompts is active:
its oldest prompt is served in the slot, the others wait (at most ``queue`` per user; more are dropped). The
servers carry load: a served request holds its cloud SMs until its cloud steps end and its edge SMs until its
edge steps end, so the next slots see only the free SMs (the seed's "ES 剩余 SM"); bandwidth and power are the
slot's. The slot's instance holds the active users with their faded gains, their prompts and the free SMs; any
method decides; a decision the referee finds infeasible is refused (every active user is then served by the
fallback: each on its strongest edge, the fewest steps, equal shares), so each active user is served exactly
once per slot. The reference per slot is the proven optimum (``minlp``) when at most ``exact_users`` users are
active, else the ``lagrange`` upper bound.

``DecisionProcess`` (what ``edgeopt.envs.make("offload")`` and the learned methods run): one agent per user; in
each slot every active user picks the seed's discrete action ⟨edge, steps o, cloud steps c⟩ (the offloaded steps
are o − c), one flat ``Discrete(edges × steps × cloud steps + 1)`` whose last action is "idle" (the only one open
to a user without a prompt); stage two — TS-MITO's closed-form SM splits and Newton-KKT radio, or the ``equal``
and ``proportional`` splits — turns the choices into the slot's solution, the referee judges it, and each agent is
paid its own term of the referee's objective, ``w1 U_n − w2 T_n − w3 E_n`` (the seed's reward), so the agents'
rewards in a slot sum to the slot's objective. An action outside the mask is moved to the nearest open one (steps
clipped to the instance's ranges, c <= o). An episode is ``slots`` slots of one simulated run (idle slots are
skipped); a single instance is a one-slot episode with every user active (how the learned methods solve files).

Observation per agent (``obs``, the seed's three plus what a user knows of itself and of the slot): the channel
gain to every edge (dB, scaled), every edge's free SMs and the cloud's (hundreds), the prompt's alignment with
every edge's model, the video size (Gbit), active or not, the number of active users (tens), and which user it is
(one-hot: the agents share one network, and users stand still, so a user's index says where it is — as PyMARL and
MAPPO add agent ids). ``state()`` of the PettingZoo view stacks every agent's, for the centralised critics.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from edgeopt.heuristics.offload import stage_two
from edgeopt.limits import AGENTS_MAX, Count
from edgeopt.model import InputError
from edgeopt.problems.offload import (_EDGE_MODELS, _RAW_VIDEO_MBIT, Data, Fibre, Instance, Lvm, Solution, equal_split,
                                      evaluate, generate)

MIN_SMS = 1e-3  # the least SMs the instance format takes: what a closed edge carries in a slot's instance
MIN_FREE = 1.0  # a server with less than one whole SM free takes no work in a slot
ALGORITHMS = ("mappo", "ippo", "vdn", "qmix")
Split = Literal["kkt", "equal", "proportional"]


class Simulation:
    """TS-MITO over time (module docstring): fading channels, prompts arriving per user, servers carrying load."""

    PLOTS = (("decision", "objective", "weighted objective (referee)"), ("quality", "utility", "utility U"),
             ("delay", "mean_s", "mean delay per request, s"), ("energy", "total_j", "energy, J"),
             ("load", "free_edge_sms", "free edge SMs at the slot's start"),
             ("reference", "ref_value", "optimum (minlp) or bound (lagrange) per slot"))
    CDF = ("delay", "values", "request delay, s")
    SUMMARY = {"objective": ("decision", "objective", "sum"), "utility": ("quality", "utility", "sum"),
               "delay_mean_s": ("delay", "mean_s", "mean"), "energy_j": ("energy", "total_j", "sum"),
               "served": ("service", "served", "sum"), "refused": ("service", "refused", "sum"),
               "dropped": ("service", "dropped", "sum"), "reference": ("reference", "ref_value", "sum"),
               "gap_to_reference": ("reference", "gap_to_value", "mean")}
    REFERENCE = "minlp"  # on small slots; reference_method picks the lagrange bound on the others

    def __init__(self, preset: str = "paper", seed: int = 0,
                 users: Annotated[int, Field(ge=1, le=AGENTS_MAX)] | None = None,
                 edges: Annotated[int, Field(ge=1, le=100)] | None = None,
                 arrivals: Literal["bernoulli", "poisson"] = "bernoulli",
                 rate: Annotated[float, Field(ge=0, le=100)] = 1.0,
                 slot_s: Annotated[float, Field(gt=0, le=1e6)] = 30.0,
                 queue: Annotated[int, Field(ge=1, le=1000)] = 5,
                 fading: Literal["rayleigh", "none"] = "rayleigh",
                 exact_users: Annotated[int, Field(ge=0, le=6)] = 3,
                 utility: Annotated[float, Field(ge=0, le=1e6)] | None = None,
                 delay_per_s: Annotated[float, Field(ge=1e-9, le=1e6)] | None = None,
                 energy_per_j: Annotated[float, Field(ge=0, le=1e6)] | None = None,
                 fibre: Fibre = "crossing", lvm: Lvm = "mixed"):
        if arrivals == "bernoulli" and rate > 1:
            raise InputError("--option rate", f"is a probability per slot with arrivals=bernoulli: must be <= 1, "
                                              f"got {rate}")
        self.preset, self.seed, self.arrivals, self.rate, self.slot_s = preset, seed, arrivals, rate, slot_s
        self.queue_cap, self.fading, self.exact_users = queue, fading, exact_users
        weights = {k: v for k, v in (("utility", utility), ("delay_per_s", delay_per_s),
                                     ("energy_per_j", energy_per_j)) if v is not None}
        world = generate(preset, users, seed, edges=edges, fibre=fibre, lvm=lvm, **weights)
        self.world = world.data.model_dump(mode="json")
        self.users = world.data.n_users
        self.path_gain = world.data.gain  # (users, edges): path loss and shadowing, fixed for the run
        self.factor = np.array([next(f for name, _, _, f, _ in _EDGE_MODELS if name == e.model)
                                for e in world.data.edges])
        self.sms = np.r_[world.data.cloud.sms, [e.sms for e in world.data.edges]]  # server 0 the cloud, k + 1 edge k
        self.waiting: list[list[dict]] = [[] for _ in range(self.users)]  # per user, its prompts in arrival order
        self.holds = np.zeros((0, 3))  # (server, SMs, release time in s) of the requests still running
        self.active: list[int] = []  # the users of the current slot's instance, in its row order
        self.dropped = 0  # prompts dropped from full queues in the current slot

    @staticmethod
    def largest(preset: str, users: int | None, edges: int | None, **_) -> dict:
        """Generator arguments of the largest slot (for ``instance_bytes``): every user active."""
        return {"preset": preset, "size": users, "edges": edges}

    def free_sms(self, t: int) -> np.ndarray:
        """SMs of the cloud and of each edge not held by requests still running at the slot's start."""
        held = self.holds[self.holds[:, 2] > t * self.slot_s]
        return self.sms - np.bincount(held[:, 0].astype(int), weights=held[:, 1], minlength=len(self.sms))

    def _arrive(self, t: int) -> None:
        rng = np.random.default_rng([self.seed, t, 0])
        U, M = self.path_gain.shape
        count = (rng.random(U) < self.rate).astype(int) if self.arrivals == "bernoulli" else rng.poisson(self.rate, U)
        self.dropped = 0
        for n in np.flatnonzero(count).tolist():
            for _ in range(int(count[n])):
                align = np.round(rng.uniform(0.55, 0.95) * self.factor * rng.uniform(0.95, 1.0, size=M), 4)
                prompt = {"arrival": t, "alignment": align, "video_mbit": round(_RAW_VIDEO_MBIT / rng.uniform(1, 4), 2)}
                if len(self.waiting[n]) < self.queue_cap:
                    self.waiting[n].append(prompt)
                else:
                    self.dropped += 1

    def instance(self, t: int) -> Instance | None:
        """The slot's active users with their oldest prompts; None when nobody can be served: no prompt waits, or
        the cloud (which runs every request's first steps) has less than ``MIN_FREE`` SMs free, or every edge is
        closed and no request can run all its steps on the cloud."""
        self._arrive(t)
        free = self.free_sms(t)
        steps = self.world["steps"]
        cloud_only = max(steps["o_min"], steps["c_min"]) <= steps["c_max"]
        servable = free[0] >= MIN_FREE and ((free[1:] >= MIN_FREE).any() or cloud_only)
        self.active = [n for n in range(self.users) if self.waiting[n]] if servable else []
        if not self.active:
            return None
        gain = self.path_gain[self.active]
        if self.fading == "rayleigh":
            gain = gain * np.random.default_rng([self.seed, t, 1]).exponential(1.0, size=self.path_gain.shape)[self.active]
        free = np.where(free >= MIN_FREE, free, MIN_SMS)
        prompts = [self.waiting[n][0] for n in self.active]
        data = {**self.world, "video_mbit": [p["video_mbit"] for p in prompts],
                "alignment": [p["alignment"].tolist() for p in prompts], "gain": np.clip(gain, 1e-30, 1.0).tolist(),
                "cloud": {**self.world["cloud"], "sms": float(free[0])},
                "edges": [{**e, "sms": float(f)} for e, f in zip(self.world["edges"], free[1:])]}
        meta = {"simulation": "edgeopt.systems.offload.Simulation", "preset": self.preset, "seed": self.seed,
                "slot": t, "users": self.active}
        return Instance(name=f"{self.preset}-sim-s{self.seed}-t{t}", meta=meta, data=Data.model_validate(data))

    def reference_method(self, instance: Instance) -> str:
        """The proven optimum on small slots, the Lagrangian bound on the others."""
        return reference_method(instance, self.exact_users)

    def fallback(self, instance: Instance) -> Solution:
        """Each user on its strongest open edge, the fewest steps (cloud steps c_min), equal shares; with every
        edge closed, on its strongest edge with all its (fewest) steps on the cloud."""
        d, s = instance.data, instance.data.steps
        o = max(s.o_min, s.c_min)
        open_edge = np.array([e.sms > MIN_SMS for e in d.edges])
        c = s.c_min if open_edge.any() else o
        edge = np.argmax(np.where(open_edge | ~open_edge.any(), d.gain, -1.0), axis=1)
        return equal_split(instance, edge, np.full(d.n_users, o), np.full(d.n_users, c))

    def advance(self, t: int, instance: Instance | None, solution: Solution | None) -> dict[str, dict]:
        """Serve the slot's requests: the active users' oldest prompts leave, their SMs are held while they run."""
        service = {"arrivals": 0, "active": 0, "served": 0, "refused": 0, "dropped": self.dropped,
                   "queued": sum(map(len, self.waiting))}
        free = self.free_sms(t)
        load = {"free_cloud_sms": float(free[0]), "free_edge_sms": float(free[1:].sum())}
        service["arrivals"] = sum(p["arrival"] == t for q in self.waiting for p in q) + self.dropped
        if instance is None:
            return {"service": service, "load": load}
        ev = evaluate(instance, solution)
        if not ev.feasible:
            service["refused"] = len(self.active)
            solution = self.fallback(instance)
            ev = evaluate(instance, solution)
        d = ev.details
        start = t * self.slot_s
        cloud_end = start + np.array(d["delay_cloud_s"])
        edge_end = cloud_end + np.array(d["delay_fibre_s"]) + np.array(d["delay_edge_s"])
        on_edge = np.array(solution.edge_sms) > 0
        self.holds = np.vstack([self.holds[self.holds[:, 2] > start],
                                np.c_[np.zeros(len(cloud_end)), solution.cloud_sms, cloud_end],
                                np.c_[np.array(solution.edge)[on_edge] + 1, np.array(solution.edge_sms)[on_edge],
                                      edge_end[on_edge]]])
        waited = [t - self.waiting[n].pop(0)["arrival"] for n in self.active]
        service.update(active=len(self.active), served=len(self.active), queued=sum(map(len, self.waiting)))
        delay = d["delay_s"]
        return {"service": service, "load": load,
                "quality": {"utility": d["utility_total"], "utility_mean": d["utility_total"] / len(delay)},
                "delay": {"values": delay, "mean_s": float(np.mean(delay)), "total_s": d["delay_total_s"],
                          "waited_slots": float(np.mean(waited))},
                "energy": {"values": d["energy_j"], "total_j": d["energy_total_j"],
                           "mean_j": d["energy_total_j"] / len(delay)}}


def reference_method(instance: Instance, exact_users: int = 3) -> str:
    """``minlp`` (the proven optimum) for at most ``exact_users`` users, else ``lagrange`` (an upper bound)."""
    return "minlp" if instance.data.n_users <= exact_users else "lagrange"


def optimum_method(instance: Instance) -> str:
    """What environments put in ``info`` for a judged slot: the optimum on small slots, else the bound."""
    return reference_method(instance)


# --- the decision process ---------------------------------------------------------------------------

LAYOUT_VERSION = 1
MAX_IDLE = 100_000  # idle slots an episode skips before it gives up (rate 0: nothing ever arrives)
GAIN_DB, SMS, GBIT, USERS = 100.0, 100.0, 1000.0, 10.0  # offsets and units of the observation's features


@dataclass(frozen=True)
class Layout:
    """Edges, the step grid of the actions and the users (agents): what a policy file must match."""

    edges: int
    o_min: int
    o_max: int
    c_min: int
    c_max: int
    agents: int
    version: int = LAYOUT_VERSION
    network = "factored"  # the actor's family (edgeopt.learn.nets): a head per part of the action
    feature_low = -1e9  # gains in dB go below 0

    @property
    def steps(self) -> int:
        return self.o_max - self.o_min + 1

    @property
    def clouds(self) -> int:
        return self.c_max - self.c_min + 1

    @property
    def parts(self) -> tuple[int, int, int]:
        return self.edges, self.steps, self.clouds

    @property
    def actions(self) -> int:
        return self.edges * self.steps * self.clouds + 1  # the last one: idle

    @property
    def idle(self) -> int:
        return self.actions - 1

    @property
    def features(self) -> int:
        return 3 * self.edges + 4 + self.agents

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {"obs": (self.features,), "action_mask": (self.actions,)}

    def action(self, m: int, o: int, c: int) -> int:
        return (m * self.steps + o - self.o_min) * self.clouds + c - self.c_min

    def choice(self, a: int) -> tuple[int, int, int]:
        """(edge, o, c) of a flat action (not the idle one)."""
        mo, c = divmod(a, self.clouds)
        m, o = divmod(mo, self.steps)
        return m, o + self.o_min, c + self.c_min

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict) -> "Layout":
        return cls(*(int(doc[k]) for k in ("edges", "o_min", "o_max", "c_min", "c_max", "agents", "version")))

    def misfit(self, instance: Instance) -> str | None:
        """Why the instance does not fit this layout (None when it does)."""
        d, s = instance.data, instance.data.steps
        if len(d.edges) != self.edges:
            return f"the policy was trained for {self.edges} edge servers, the instance has {len(d.edges)}"
        if d.n_users > self.agents:
            return f"the policy was trained for at most {self.agents} users, the instance has {d.n_users}"
        lo, hi = max(s.o_min, s.c_min, self.o_min), min(s.o_max, self.o_max)
        if lo > hi or max(s.c_min, self.c_min) > min(s.c_max, self.c_max, hi):
            return (f"the policy chooses steps {self.o_min}..{self.o_max} and cloud steps {self.c_min}..{self.c_max}, "
                    f"the instance allows {s.o_min}..{s.o_max} and {s.c_min}..{s.c_max}: no choice in common")
        return None


class DecisionProcess:
    """The users of one slot (or one episode of slots) choosing ⟨edge, o, c⟩; ``reset`` starts an episode on an
    instance (one slot) or on a Simulation (``slots`` slots of its run)."""

    sequential = False  # the users of a slot decide together (no Gymnasium view)

    def __init__(self, layout: Layout, agents: int, split: Split = "kkt", slots: int = 10):
        self.layout, self.n_agents, self.split, self.slots = layout, int(agents), split, int(slots)
        self.instance: Instance | None = None
        self.system: Simulation | None = None

    reward = "objective"  # each user's term of the referee's objective (the seed's reward)

    @classmethod
    def for_instance(cls, layout: Layout, instance: Instance, split: Split = "kkt") -> "DecisionProcess":
        """The process a policy solves ``instance`` with: an agent per user, every user active."""
        return cls(layout, instance.data.n_users, split)

    # --- episode ------------------------------------------------------------------------------------

    def reset(self, source: Instance | Simulation) -> None:
        self.system = source if isinstance(source, Simulation) else None
        self.t = self.decided = self.refused = self.served = self.infeasible = 0
        self.done, self.truncated = False, False
        self.judged: list[tuple[Instance, dict]] = []  # the slots judged by the last step: (instance, outcome)
        self.totals = dict.fromkeys(("objective", "utility", "delay_s", "energy_j"), 0.0)
        self._solution = None
        if self.system is None:
            reason = self.layout.misfit(source)
            if reason:
                raise InputError("instance", reason)
            if source.data.n_users > self.n_agents:
                raise InputError("instance", f"has {source.data.n_users} users, the process {self.n_agents} agents")
            self._enter(source, list(range(source.data.n_users)))
        else:
            self._next_slot()

    def _next_slot(self) -> None:
        """Advance the simulation over idle slots to the next slot with active users."""
        for _ in range(MAX_IDLE):
            inst = self.system.instance(self.t)
            if inst is not None:
                break
            self.system.advance(self.t, None, None)
            self.t += 1
        else:
            raise InputError("rate", f"no user could be served in {MAX_IDLE:,} slots: prompts must arrive (rate > 0)")
        if self.system.users > self.n_agents:
            raise InputError("users", f"the simulation has {self.system.users} users, the process {self.n_agents}")
        self._enter(inst, list(self.system.active))

    def _enter(self, instance: Instance, users: list[int]) -> None:
        lay, d, s = self.layout, instance.data, instance.data.steps
        self.instance, self.users = instance, users
        self.row = {u: k for k, u in enumerate(users)}
        # the open actions: the instance's ranges within the layout's grid, c <= o
        o = np.arange(lay.o_min, lay.o_max + 1)
        c = np.arange(lay.c_min, lay.c_max + 1)
        o_ok = (o >= max(s.o_min, s.c_min)) & (o <= s.o_max)
        c_ok = (c >= s.c_min) & (c <= s.c_max)
        grid = o_ok[:, None] & c_ok[None, :] & (c[None, :] <= o[:, None])
        # a closed edge (no whole SM free) takes only requests whose steps all run on the cloud (c = o)
        edge_ok = np.array([e.sms > MIN_SMS for e in d.edges])
        self.open = (edge_ok[:, None, None] | (c[None, None, :] == o[None, :, None])) & grid[None]  # (edges, o, c)
        mask = np.zeros((self.n_agents, lay.actions), dtype=np.int8)
        mask[:, -1] = 1
        mask[users, :-1] = self.open.ravel()
        mask[users, -1] = 0
        gain_db = (10 * np.log10(d.gain) + GAIN_DB) / 20
        free = np.r_[d.cloud.sms, [e.sms for e in d.edges]] / SMS
        obs = np.zeros((self.n_agents, lay.features), dtype=np.float32)
        M = lay.edges
        obs[users, :M] = gain_db
        obs[:, M:2 * M] = free[1:]  # every agent sees the servers and the slot, active or not
        obs[users, 2 * M:3 * M] = d.alignment
        obs[:, 3 * M] = free[0]
        obs[users, 3 * M + 1] = d.video_mbit / GBIT
        obs[users, 3 * M + 2] = 1.0
        obs[:, 3 * M + 3] = len(users) / USERS
        obs[:, 3 * M + 4:3 * M + 4 + self.n_agents] = np.eye(self.n_agents)  # which user: the agents share a network
        self._obs = {"obs": obs, "action_mask": mask, "alive": np.isin(np.arange(self.n_agents), users)}

    @property
    def live(self) -> list[int]:
        """Every agent until the episode ends (a user without a prompt takes the idle action)."""
        return [] if self.instance is None or self.done else list(range(self.n_agents))

    def mask(self, i: int) -> np.ndarray:
        return self._obs["action_mask"][i].astype(bool)

    def observe(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[i] for k, v in self._obs.items() if k != "alive"}

    def observe_all(self) -> dict[str, np.ndarray]:
        """Every agent's observation stacked on a leading agent axis, with ``alive`` (active in the slot)."""
        return self._obs

    # --- acting -------------------------------------------------------------------------------------

    def _choose(self, a: int) -> tuple[int, int, int]:
        """The (edge, o, c) of an active user's action; one outside the mask moves to the nearest open one (the
        same edge if it can, then the nearest o, then the nearest c; the idle action counts as edge 0, o_min,
        c_min)."""
        lay = self.layout
        m, o, c = lay.choice(a) if 0 <= a < lay.idle else (0, lay.o_min, lay.c_min)
        if self.open[m, o - lay.o_min, c - lay.c_min]:
            return m, o, c
        opens = np.argwhere(self.open)  # (edge, o, c) grid positions
        k = np.argmin(((opens[:, 0] != m) * lay.steps + np.abs(opens[:, 1] - (o - lay.o_min))) * lay.clouds
                      + np.abs(opens[:, 2] - (c - lay.c_min)))
        return int(opens[k, 0]), int(opens[k, 1] + lay.o_min), int(opens[k, 2] + lay.c_min)

    def step(self, actions: dict[int, int]) -> dict[int, float]:
        """Apply the active users' actions (stage two, the referee); each agent's reward, its term of the slot's
        objective (0 for the idle). The next slot is entered, or the episode ends."""
        inst, users = self.instance, self.users
        choice = np.array([self._choose(int(actions.get(u, -1))) for u in users])
        sol = stage_two(inst, choice[:, 0], choice[:, 1], choice[:, 2], self.split)
        ev = evaluate(inst, sol)
        per_user = ev.details["per_user_objective"]
        rewards = {i: 0.0 for i in self.live}
        for u, v in zip(users, per_user):
            rewards[u] = float(v)
        out = {"objective": ev.objective, "feasible": ev.feasible, "utility": ev.details["utility_total"],
               "delay_s": ev.details["delay_total_s"], "energy_j": ev.details["energy_total_j"],
               "users": len(users), "instance": inst.name}
        self._solution = sol
        self.infeasible += not ev.feasible
        self.judged = [(inst, out)]
        for k in self.totals:
            self.totals[k] += out[k]
        self.decided += 1
        if self.system is not None:
            out.update(self._advance(sol))
        if self.system is None or self.decided >= self.slots:
            self.done = True
            out["episode"] = self.outcome()
        else:
            self._next_slot()
        return rewards

    def _advance(self, sol: Solution) -> dict:
        service = self.system.advance(self.t, self.instance, sol)["service"]
        self.refused += service["refused"]
        self.served += service["served"]
        self.t += 1
        return {"slot": self.t - 1, "refused": service["refused"], "dropped": service["dropped"]}

    # --- the end ------------------------------------------------------------------------------------

    def solution(self) -> Solution:
        """The last slot's solution (the whole answer on a one-slot episode)."""
        return self._solution

    def claimed(self) -> None:
        """No claim of its own: the slot's numbers are the referee's."""
        return None

    def outcome(self) -> dict:
        """The episode's totals: the referee's objective and parts summed over its slots."""
        return {**self.totals, "slots": self.decided, "served": self.served, "refused": self.refused,
                "truncated": False, "instance": self.instance.name, "feasible": self.infeasible == 0}


def make_process(preset: str | None = None, size: int | None = None, split: Split = "kkt",
                 slots: Count = 10, **options):
    """(decision process, draw): ``draw(seed)`` is a fresh Simulation (``preset``, ``size`` users, the
    simulation's ``options``), an episode of ``slots`` slots; the layout is the preset's step grid."""
    from edgeopt import registry
    from edgeopt.simulation import _build

    registry.check_values(make_process, {"split": split, "slots": slots}, registry.option_flag)
    prob = registry.problem("offload")
    preset = preset or "paper"
    if "users" in options:
        raise InputError("--option users", "is set by --size")
    params = {**options, **({"users": size} if size is not None else {})}
    probe = _build(Simulation, prob, preset, 0, params)  # bad parameters: exit 2 here
    s = probe.world["steps"]
    layout = Layout(len(probe.world["edges"]), s["o_min"], s["o_max"], s["c_min"], s["c_max"], probe.users)
    process = DecisionProcess(layout, probe.users, split, slots)

    def draw(seed: int) -> Simulation:
        return Simulation(preset=preset, seed=seed, **params)

    return process, draw
