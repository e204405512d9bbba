"""The ``cdgs`` system over time (``edgeopt simulate cdgs``): orbits, batteries, dish failures and the auction's
record of them."""
from __future__ import annotations

from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field

from edgeopt.model import InputError
from edgeopt.problems.cdgs import (_R_EARTH, _RELIABILITY, _SHELLS, _SIM_BATTERY_WH, _SIM_CYCLES, _SIM_TX_J_PER_MB,
                                   MAX_INDEX, Data, Instance, Solution, Utility, _constellation, _dish_pool,
                                   _walk_load, _walker, cycle_damage)

# Satellite power figures the paper does not give (our assumptions, with the battery's in edgeopt.problems.cdgs).
_SIM_SOLAR_W, _SIM_BUS_W = 250.0, 60.0
_SIM_PRIOR = 2.0  # pseudo-wins behind a dish's advertised reliability before its own record counts


class Simulation:
    """SusCO over time: Walker orbits move the dishes under each satellite, batteries charge in sunlight and
    drain by relaying, dishes fail, and the auction learns their record.

    State: every satellite's state of charge and consumed battery life, every dish's wins and failures. Each
    interval is an instance of the generator's geometry at t = 60 tau s with the state's charges (so the
    lifetime savings l_k follow the batteries) and the dishes' empirical reliability and win counts (so
    CSTP's exploration term acts; with ``utility=reliability-weighted`` the reliability enters the utility). A winning dish fails with its own rate; its share falls back to the ISL
    path. Every task's traffic ends delivered through a dish or on its ISL path, never both.
    """

    PLOTS = (("decision", "objective", "utility (referee)"), ("energy", "comm_j", "satellite energy, J"),
             ("energy", "soc_mean", "mean state of charge"), ("lifetime", "consumed_total", "battery life consumed"),
             ("delay", "mean_ms", "mean end-to-end delay, ms"), ("auction", "fallback_mb", "failed-dish traffic, Mb"))
    CDF = ("delay", "values", "end-to-end delay, ms")
    SUMMARY: ClassVar[dict] = {
        "utility": ("decision", "objective", "sum"), "energy_j": ("energy", "comm_j", "sum"),
        "lifetime_consumed": ("lifetime", "consumed_total", "last"), "mean_delay_ms": ("delay", "mean_ms", "mean"),
        "payment": ("auction", "payment", "sum")}

    def __init__(self, preset: str = "starlink-550", seed: int = 0,
                 size: Annotated[int, Field(ge=1, le=MAX_INDEX)] | None = None,
                 bids: Annotated[int, Field(ge=1, le=1000)] = 30,
                 battery_wh: Annotated[float, Field(gt=0, le=1e7)] = _SIM_BATTERY_WH,
                 solar_w: Annotated[float, Field(ge=0, le=1e7)] = _SIM_SOLAR_W,
                 bus_w: Annotated[float, Field(ge=0, le=1e7)] = _SIM_BUS_W,
                 tx_j_per_mb: Annotated[float, Field(ge=0, le=1e6)] = _SIM_TX_J_PER_MB,
                 cycles: Annotated[float, Field(gt=0, le=1e9)] = _SIM_CYCLES, utility: Utility = "unweighted"):
        if preset not in _SHELLS:
            raise InputError("--preset", f"must be a constellation ({', '.join(_SHELLS)}) to simulate cdgs: "
                                         f"{preset!r} has no orbits")
        planes, per, *_ = _SHELLS[preset]
        n_sat = planes * per
        if size is not None and size > n_sat:
            raise InputError("--option size", f"must be 1..{n_sat} (tasks, one per satellite of {preset})")
        self.preset, self.seed, self.size, self.bids = preset, seed, size, bids
        self.capacity_j, self.solar_w, self.bus_w, self.tx = battery_wh * 3600.0, solar_w, bus_w, tx_j_per_mb
        self.cycles, self.utility = cycles, utility
        rng = np.random.default_rng([seed, 0xC065])
        self.pool = _dish_pool(max(2 * (size or n_sat), bids), rng)
        kind = self.pool[1]
        lo = np.where(kind == "gs", _RELIABILITY["gs"][0], _RELIABILITY["5g"][0])
        hi = np.where(kind == "gs", _RELIABILITY["gs"][1], _RELIABILITY["5g"][1])
        self.advertised = (lo + hi) / 2  # what a dish's operator states before it has a record
        self.fail_rate = 1.0 - rng.uniform(lo, hi)  # the truth, unknown to the auction
        self.wins = np.zeros(len(kind), dtype=np.int64)
        self.failures = np.zeros(len(kind), dtype=np.int64)
        eci = _walker(*_SHELLS[preset], 0.0)[1]
        eclipse = (eci[:, 0] < 0) & (np.hypot(eci[:, 1], eci[:, 2]) < _R_EARTH)  # as the generator starts them
        self.soc = np.where(eclipse, rng.uniform(0.25, 0.55, n_sat), rng.uniform(0.55, 0.95, n_sat))
        self.life = np.zeros(n_sat)
        self.paths: dict = {}

    @property
    def reliability(self) -> np.ndarray:
        """Per dish: successful wins plus the advertised figure as ``_SIM_PRIOR`` pseudo-wins, over all wins."""
        return (self.wins - self.failures + _SIM_PRIOR * self.advertised) / (self.wins + _SIM_PRIOR)

    def instance(self, t: int) -> Instance:
        out = _constellation(self.preset, self.size, self.bids, t, np.random.default_rng([self.seed, t]),
                             soc=self.soc, pool=self.pool)
        self.paths = out.pop("paths")
        data = out["data"]
        data["bids"]["reliability"] = np.round(self.reliability[np.array(data["bids"]["dish"])], 6).tolist()
        data["dishes"]["wins"] = self.wins.tolist()
        data["utility"] = self.utility  # reliability-weighted: the learned record steers the auction's utility too
        meta = {"simulation": "edgeopt.systems.cdgs.Simulation", "preset": self.preset, "seed": self.seed,
                "interval": t, **out["meta"]}
        return Instance(name=f"{self.preset}-sim-s{self.seed}-i{t}", meta=meta, data=Data.model_validate(data))

    def fallback(self, instance: Instance) -> Solution:
        """Without a decision every task stays on its ISL path."""
        return Solution(groups=[])

    def advance(self, t: int, instance: Instance, solution: Solution) -> dict[str, dict]:
        """Carry the decision out, move energy, charge batteries, count battery life and dish records."""
        d, paths = instance.data, self.paths
        b, tk = d.bids, d.tasks
        T = len(tk.source)
        member = [(g.task, k, f, p) for g in solution.groups
                  for k, f, p in zip(g.bids, g.shares, g.payments or [0.0] * len(g.bids))]
        task, bid, share, pay = (np.array(c, dtype=float).reshape(-1) for c in zip(*member)) if member else \
            (np.zeros(0),) * 4
        task, bid = task.astype(int), bid.astype(int)
        # what can be carried out: a dish serves its first winning bid, a task's shares stop at its traffic
        dish = b.dish[bid]
        first = np.zeros(len(bid), dtype=bool)
        first[np.unique(dish, return_index=True)[1]] = True
        share = np.where(first & (b.task[bid] == task), np.clip(share, 0.0, None), 0.0)
        by = np.argsort(task, kind="stable")
        run = np.cumsum(share[by]) - share[by]
        before = np.empty(len(bid))
        before[by] = run - run[np.searchsorted(task[by], task[by])]  # the task's earlier shares
        share = np.clip(np.minimum(share, tk.traffic_mb[task] - before), 0.0, None)
        failed = np.random.default_rng([self.seed, t, 1]).random(len(self.wins)) < self.fail_rate
        won = share > 0
        delivered = np.where(won & ~failed[dish], share, 0.0)
        lost = np.where(won & failed[dish], share, 0.0)
        np.add.at(self.wins, dish[won], 1)
        np.add.at(self.failures, dish[won & failed[dish]], 1)
        carried = np.bincount(task, delivered, T)
        isl = tk.traffic_mb - carried  # kept on the ISL path, or fallen back to it
        # delay: the slowest delivered share, or the ISL path for traffic that stays on it
        slowest = np.zeros(T)
        np.maximum.at(slowest, task[delivered > 0], b.delay_ms[bid[delivered > 0]])
        delay = np.where(isl > 1e-9 * tk.traffic_mb, np.maximum(slowest, tk.base_ms), slowest)
        # energy: every satellite on a path transmits the traffic once (ISL hops, then the down-link)
        p, s, planes, per = paths["grid"]
        exit_sat = paths["exit_sat"][bid]
        mb = _walk_load(paths["source"], paths["dest_sat"], p, s, planes, per, isl)
        mb += _walk_load(paths["source"][task], exit_sat, p, s, planes, per, delivered)
        mb += np.bincount(exit_sat, delivered * paths["extra"][bid], len(self.soc))
        comm = self.tx * mb
        sunlit = ~paths["eclipse"]
        net = (self.solar_w * sunlit - self.bus_w) * d.interval_s - comm
        soc = np.clip(self.soc + net / self.capacity_j, 0.0, 1.0)
        damage = cycle_damage(1.0 - self.soc, 1.0 - soc, self.cycles)
        empty = int(np.sum(self.soc + net / self.capacity_j < 0))
        self.soc, self.life = soc, self.life + damage
        served = np.zeros(T, dtype=bool)
        served[task[won]] = True
        return {
            "auction": {"tasks": T, "served": int(served.sum()), "traffic_mb": float(tk.traffic_mb.sum()),
                        "offloaded_mb": float(delivered.sum()), "fallback_mb": float(lost.sum()),
                        "isl_mb": float(isl.sum()), "failed_bids": int(np.sum(won & failed[dish])),
                        "payment": float(np.sum(np.where(delivered > 0, pay, 0.0))),
                        "winning_cost": float(b.cost[bid[won]].sum())},
            "energy": {"comm_j": float(comm.sum()), "soc_mean": float(soc.mean()), "soc_min": float(soc.min()),
                       "sunlit": int(sunlit.sum()), "empty": empty},
            "lifetime": {"consumed": float(damage.sum()), "consumed_total": float(self.life.sum()),
                         "worst_sat": float(self.life.max())},
            "delay": {"mean_ms": float(delay.mean()), "p50_ms": float(np.median(delay)),
                      "p95_ms": float(np.quantile(delay, 0.95)), "max_ms": float(delay.max()),
                      "values": np.round(delay, 3).tolist()},
            "dishes": {"explored": int(np.sum(self.wins > 0)), "wins": int(self.wins.sum()),
                       "failures": int(self.failures.sum())},
        }
