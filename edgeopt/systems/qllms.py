"""The ``qllms`` system over time (``edgeopt simulate qllms``): task arrivals and a profile that fills in."""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from edgeopt.problems.qllms import OUTCOMES, Data, Instance, Solution, evaluate, generate, task_outcome


class Simulation:
    """QLLMS over time: Poisson arrivals of the preset's task families, a profile that fills in as tasks run.

    The preset's generator makes ``families`` task templates (model, tokens, SLOs and their true latency,
    perplexity and memory); ``observe`` of their entries are measured at the start. Each interval brings
    Poisson(``rate``) tasks, each a copy of a uniformly drawn family, and every server type offers its GPUs for
    a horizon that keeps the expected load at ``load``. A task that runs at the edge (whether it then meets
    its SLOs or not) measures its family's latency on its (server, level) and perplexity at its level, so
    later intervals see more of the matrix. Tasks are served within their interval: at the edge, or in the
    cloud (chosen, or after a failed SLO, an overflow or an unrunnable pair).
    """

    PLOTS = (("service", "cost", "cost, $"), ("service", "tcr", "edge task completion rate"),
             ("observation", "lat_seen", "latency entries observed"), ("reference", "gap", "gap to the optimum"))
    CDF = ("reference", "gap", "gap to the full-information optimum")
    SUMMARY = {"cost": ("service", "cost", "sum"), "tcr": ("service", "tcr", "mean"),
               "optimum": ("reference", "ref_objective", "sum"), "mean_gap": ("reference", "gap", "mean"),
               "lat_seen": ("observation", "lat_seen", "last")}
    REFERENCE = "milp"  # the per-interval full-information optimum

    def __init__(self, preset: str = "qllms", seed: int = 0, families: Annotated[int, Field(ge=1, le=100_000)] = 20,
                 rate: Annotated[float, Field(gt=0, le=1e6)] | None = None,
                 observe: Annotated[float, Field(ge=0.2, le=1.0)] = 0.3,
                 load: Annotated[float, Field(gt=0, le=1e3)] = 1.0, gpus: Annotated[int, Field(ge=1, le=10_000)] = 2,
                 objective: Literal["delta-cost", "gpu-seconds"] = "delta-cost",
                 memory: Literal["aggregate", "per-task"] = "aggregate", slo: Literal["ttft-tpot", "latency"] = "ttft-tpot"):
        self.template = generate(preset, size=families, seed=seed, observe=observe, load=load, gpus=gpus,
                                 objective=objective, memory=memory, slo=slo).data
        d = self.template
        self.seed, self.preset = seed, preset
        self.rate = float(families if rate is None else rate)
        self.horizon = d.horizon_s * self.rate / families  # the expected load stays at `load`
        self.seen_lat = np.ones(d.lat.shape, bool) if d.seen_lat is None else d.seen_lat.copy()
        self.seen_ppl = np.ones(d.ppl.shape, bool) if d.seen_ppl is None else d.seen_ppl.copy()
        self.family = np.zeros(0, dtype=np.int64)

    def _data(self, t: int, family: np.ndarray, partial: bool) -> Data:
        d = self.template
        tasks = [d.tasks[f].model_copy(update={"name": f"i{t}-{k}-{d.tasks[f].name}"}) for k, f in enumerate(family)]
        return Data(horizon_s=self.horizon, tasks=tasks, servers=d.servers, quants=d.quants, lat=d.lat[family],
                    ppl=d.ppl[family], need=d.need[family], seen_lat=self.seen_lat[family] if partial else None,
                    seen_ppl=self.seen_ppl[family] if partial else None,
                    ttft=None if d.ttft is None else d.ttft[family], objective=d.objective, memory=d.memory,
                    slo=d.slo, cloud_price=d.cloud_price)

    def instance(self, t: int) -> Instance | None:
        rng = np.random.default_rng([self.seed, t])
        n = rng.poisson(self.rate)
        self.family = np.sort(rng.integers(0, len(self.template.tasks), size=n))
        if n == 0:
            return None
        meta = {"simulation": "edgeopt.systems.qllms.Simulation", "preset": self.preset, "seed": self.seed,
                "interval": t}
        return Instance(name=f"{self.preset}-sim-s{self.seed}-i{t}", meta=meta,
                        data=self._data(t, self.family, partial=True))

    def reference_instance(self, instance: Instance) -> Instance:
        """The same tasks with every entry measured: the reference solves with full information."""
        t = instance.meta["interval"]
        return Instance(name=instance.name + "-full", meta=instance.meta, data=self._data(t, self.family, partial=False))

    def fallback(self, instance: Instance) -> Solution:
        """Without a decision every task goes to the cloud."""
        M = instance.data.shape[0]
        return Solution(server=np.full(M, -1), quant=np.full(M, -1))

    def advance(self, t: int, instance: Instance | None, solution: Solution | None) -> dict[str, dict]:
        """Serve the interval's tasks; every task that ran at the edge measures its entries."""
        counts = dict.fromkeys(OUTCOMES, 0)
        service = {"arrivals": 0, "cost": 0.0, "edge_cost": 0.0, "cloud_cost": 0.0, "tcr": None}
        if instance is not None:
            outcome = task_outcome(instance, solution)
            ran = np.isin(outcome, (OUTCOMES.index("edge"), OUTCOMES.index("slo")))
            f, j, q = self.family[ran], solution.server[ran], solution.quant[ran]
            self.seen_lat[f, j, q] = True
            self.seen_ppl[f, q] = True
            counts.update(zip(OUTCOMES, np.bincount(outcome, minlength=len(OUTCOMES)).tolist()))
            ev = evaluate(instance, solution)
            service = {"arrivals": len(outcome), "cost": ev.objective, "edge_cost": ev.details["edge_cost"],
                       "cloud_cost": ev.details["cloud_cost"], "tcr": ev.details["tcr"]}
        return {"service": {**service, **counts},
                "observation": {"lat_seen": float(self.seen_lat.mean()), "ppl_seen": float(self.seen_ppl.mean())}}
