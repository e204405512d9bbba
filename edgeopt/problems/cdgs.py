"""``cdgs`` — collaborative dish-group selection by reverse auction (SusCO, INFOCOM 2025).

One 60 s auction interval: every task (a satellite's traffic) either stays on its ISL path or is
carried to the ground by a group of at most ``n_max`` bids from commercial dishes, with traffic shares
that cover it, within its delay limit and budget; a dish wins at most once. The auction maximizes
the summed utility (energy and battery-lifetime savings plus the delay improvement, with the seed's
weights; ``data.utility = "reliability-weighted"`` weights each share by its dish's reliability, the reading
before issue 13). The referee also reports the seed's metrics: satellite energy in J, battery life consumed,
the end-to-end delay distribution with the share under 120 ms, and utility per cost. Methods that pay
add a payment per winning bid, and the referee checks individual rationality (each bid paid at least the
pro-rata cost of the data it carries) and budget feasibility of those payments. See ``specs/cdgs.md``; the generator's figures are sourced in
``instances/cdgs/README.md``.

Dishes listed in ``data.committed`` (already committed elsewhere this interval) cannot win: that is
the partial decision an embedding scheduler hands in, and every method plans around it.
"""
from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from edgeopt import model
from edgeopt.model import Array, InputError, Model, check, check_shape
from edgeopt.result import Evaluation

SENSE = "max"
# Axis labels with units for the experiment figures (``edgeopt experiment plot``), by column.
LABELS = {"objective": "utility", "budget_scale": "budget (x the default)", "bids": "bids per task",
          "size": "tasks (one per satellite)", "details.utility_per_cost": "utility per $ of the winning bids",
          "details.total_payment": "total payment ($)", "details.lifetime_consumed": "battery life consumed (lifetimes)",
          "details.share_under_120ms": "share of tasks within 120 ms"}

PRESETS = {
    "starlink-550": "Starlink shell 1: 72 planes x 22 = 1584 satellites at 550 km, 53 deg; every satellite a source",
    "starlink-2x": "two Starlink-550 shells (72 x 44 = 3168 satellites), the paper's largest scale",
    "oneweb": "OneWeb phase 1: 12 planes x 49 = 588 satellites at 1200 km, 87.9 deg",
    "kuiper": "Kuiper shell 1: 34 planes x 34 = 1156 satellites at 630 km, 51.9 deg",
    "telesat": "Telesat polar shell: 27 planes x 13 = 351 satellites at 1015 km, 98.98 deg",
    "starlink-550-3s": "Starlink-550 with the seed's evaluation intervals (300 s in 100 auctions: 3 s each), where one "
                       "5G dish cannot carry a task alone; the paper's margins",
    "small": "synthetic tasks and bids with the paper's figures, no geometry (option bids=per task); for exact comparison",
}
TOL = 1e-6
MAX_INDEX = 10_000_000  # tasks, bids, dishes and satellite ids (the paper: 3,168 satellites, 30 bids each)
# Fractions in [0, 1] keep the checks in Data (their messages name the interval); the schema states the range.
_UNIT = {"items": {"type": "number", "minimum": 0, "maximum": 1}}


class Weights(Model):
    energy: float = Field(0.3, ge=0, le=1e6, description="w_E (0 <= w <= 1e6)")
    delay: float = Field(0.4, ge=0, le=1e6, description="w_D (0 <= w <= 1e6)")
    lifetime: float = Field(0.3, ge=0, le=1e6, description="w_L (0 <= w <= 1e6)")


class Tasks(Model):
    """One entry per task (column arrays, so that paper-scale files stay compact)."""

    source: Array(int, ge=0, le=MAX_INDEX) = Field(description="source satellite id (0 <= x <= 1e7)")
    traffic_mb: Array(float, gt=0, le=1e9) = Field(description="V_t, traffic to offload, Mb (0 < x <= 1e9)")
    base_ms: Array(float, ge=1e-3, le=1e9) = Field(description="delay of the pure-ISL path, ms (1e-3 <= x <= 1e9)")
    limit_ms: Array(float, gt=0, le=1e9) = Field(description="delay limit, ms (default 1.1 base_ms; 0 < x <= 1e9)")
    budget: Array(float, ge=0, le=1e9) = Field(description="beta_t, the most the task pays, $ (0 <= x <= 1e9)")
    energy_j_per_mb: Array(float, ge=0, le=1e9) | None = Field(
        None, description="satellite energy per Mb of the pure-ISL path (every transmission on it), J/Mb; with "
                          "e_k it gives the referee's energy_j (0 <= x <= 1e9)")
    life_per_mb: Array(float, ge=0, le=1) | None = Field(
        None, description="battery life per Mb the pure-ISL path consumes (summed over its satellites, in "
                          "battery lifetimes); with l_k it gives the referee's lifetime_consumed (0 <= x <= 1)")


class Bids(Model):
    """One entry per bid; a bid is for one task from one dish."""

    task: Array(int, ge=0, le=MAX_INDEX) = Field(description="task index of the bid (0 <= x <= 1e7)")
    dish: Array(int, ge=0, le=MAX_INDEX) = Field(description="dish index of the bid (0 <= x <= 1e7)")
    traffic_mb: Array(float, gt=0, le=1e9) = Field(description="Delta_k, traffic the bid can take, Mb (0 < x <= 1e9)")
    bandwidth_mbps: Array(float, gt=0, le=1e9) = Field(
        description="gamma_k; the bid carries at most gamma_k * interval_s Mb (0 < x <= 1e9 Mbit/s)")
    delay_ms: Array(float, ge=0, le=1e9) = Field(description="xi_k, end-to-end delay through this bid, ms "
                                                             "(0 <= x <= 1e9)")
    cost: Array(float, gt=0, le=1e9) = Field(description="c_k, asking cost of the whole bid, $ (0 < x <= 1e9)")
    reliability: Array(float) = Field(description="r_k in (0, 1]",
                                      json_schema_extra={"items": {**_UNIT["items"], "exclusiveMinimum": 0}})
    energy: Array(float) = Field(description="e_k, per-Mb energy saving in [0, 1]", json_schema_extra=_UNIT)
    lifetime: Array(float) = Field(description="l_k, per-Mb battery-lifetime saving in [0, 1]",
                                   json_schema_extra=_UNIT)


class Dishes(Model):
    wins: Array(int, ge=0, le=1e9) = Field(description="n_d, past wins of every dish (exploration term; "
                                                       "0 <= x <= 1e9)")


Utility = Literal["unweighted", "reliability-weighted"]  # the seed's utility; each share weighted by its dish's r_k


class Data(Model):
    weights: Weights = Field(default_factory=Weights)
    utility: Utility = Field(
        "unweighted", description="the objective: the seed's w_E e + w_L l per Mb (unweighted) or r_k times it "
                                  "(reliability-weighted, the reading before issue 13)")
    n_max: int = Field(2, ge=1, le=10, description="largest group size (1 <= n <= 10)")
    interval_s: float = Field(60.0, gt=0, le=1e6, description="auction interval, s (0 < x <= 1e6)")
    tau: int = Field(0, ge=0, le=1_000_000_000, description="index of this interval (exploration term; 0 <= x <= 1e9)")
    tasks: Tasks
    bids: Bids
    dishes: Dishes
    committed: Array(int, ge=0, le=MAX_INDEX) = Field(default_factory=list, description="dishes unavailable this "
                                                                                    "interval (0 <= x <= 1e7)")

    @model_validator(mode="after")
    def _consistent(self):
        t, b = self.tasks, self.bids
        T, K, D = len(t.source), len(b.task), len(self.dishes.wins)
        check(T >= 1, "data.tasks.source", "must list at least one task")
        for name in ("traffic_mb", "base_ms", "limit_ms", "budget", "energy_j_per_mb", "life_per_mb"):
            if getattr(t, name) is not None:
                check_shape(getattr(t, name), (T,), f"data.tasks.{name}", "(tasks,)")
        check(K >= 1, "data.bids.task", "must list at least one bid (the bid list is empty)")
        for name in Bids.model_fields:
            check_shape(getattr(b, name), (K,), f"data.bids.{name}", "(bids,)")
        check(D >= 1, "data.dishes.wins", "must list at least one dish")
        check(b.task < T, "data.bids.task", f"must be a task index 0..{T - 1}")
        check(b.dish < D, "data.bids.dish", f"must be a dish index 0..{D - 1}")
        check((b.reliability > 0) & (b.reliability <= 1), "data.bids.reliability", "must be in (0, 1]")
        check((b.energy >= 0) & (b.energy <= 1), "data.bids.energy", "must be in [0, 1]")
        check((b.lifetime >= 0) & (b.lifetime <= 1), "data.bids.lifetime", "must be in [0, 1]")
        c = self.committed
        check(c < D, "data.committed", f"must be a dish index 0..{D - 1}")
        if len(np.unique(c)) != len(c):
            raise InputError("data.committed", "must not list a dish twice")
        return self

    # Derived per-bid figures the methods share (the referee recomputes its own from the fields).
    @cached_property
    def cap(self) -> np.ndarray:
        """Most traffic each bid can carry this interval: min(Delta_k, gamma_k * interval_s), Mb."""
        return np.minimum(self.bids.traffic_mb, self.bids.bandwidth_mbps * self.interval_s)

    @cached_property
    def gain(self) -> np.ndarray:
        """Utility per unit of traffic share through each bid: w_E e_k + w_L l_k, times r_k if reliability-weighted."""
        b, w = self.bids, self.weights
        r = b.reliability if self.utility == "reliability-weighted" else 1.0
        return r * (w.energy * b.energy + w.lifetime * b.lifetime)

    @cached_property
    def available(self) -> np.ndarray:
        """Per bid: its dish is not committed elsewhere."""
        blocked = np.zeros(len(self.dishes.wins), dtype=bool)
        blocked[self.committed] = True
        return ~blocked[self.bids.dish]


class Instance(model.Instance):
    problem = "cdgs"
    data: Data


Index = Annotated[int, Field(ge=0, le=MAX_INDEX)]
Amount = Annotated[float, Field(ge=-1e12, le=1e12)]  # looser than the data: the referee judges sign and size


class Group(Model):
    task: Index = Field(description="task index (0 <= x <= 1e7)")
    bids: list[Index] = Field(min_length=1, description="bid indices of the group (0 <= x <= 1e7)")
    shares: list[Amount] = Field(description="f_k, traffic each member carries, Mb (|x| <= 1e12)")
    payments: list[Amount] | None = Field(None, description="p_k, $ paid to each member (methods that pay; "
                                                            "|x| <= 1e12)")


class Solution(Model):
    groups: list[Group] = Field(default_factory=list, description="one group per served task; others stay on ISL")


def evaluate(instance: Instance, solution: Solution) -> Evaluation:
    """The referee: allocation feasibility, utility, the seed's metrics and (when paid) the mechanism's properties."""
    d = instance.data
    t, b, w = d.tasks, d.bids, d.weights
    weighted = d.utility == "reliability-weighted"
    T, K = len(t.source), len(b.task)
    for i, g in enumerate(solution.groups):
        if g.task >= T:
            raise InputError(f"solution.groups[{i}].task", f"must be a task index 0..{T - 1}, got {g.task}")
        for j, k in enumerate(g.bids):
            if not 0 <= k < K:
                raise InputError(f"solution.groups[{i}].bids[{j}]", f"must be a bid index 0..{K - 1}, got {k}")
        if len(g.shares) != len(g.bids):
            raise InputError(f"solution.groups[{i}].shares", f"must give one share per bid ({len(g.bids)})")
        if g.payments is not None and len(g.payments) != len(g.bids):
            raise InputError(f"solution.groups[{i}].payments", f"must give one payment per bid ({len(g.bids)})")

    violations: list[str] = []
    committed = {int(x) for x in d.committed}
    task_seen: dict[int, int] = {}
    dish_won: dict[int, int] = {}
    utility = energy_life = delay_term = cost = 0.0
    paid = [g.payments is not None for g in solution.groups]
    payment = overpayment = carried_cost = 0.0
    ir_fail = budget_fail = 0
    sizes = []
    for i, g in enumerate(solution.groups):
        tk = g.task
        if tk in task_seen:
            violations.append(f"task {tk} is served by two groups (groups {task_seen[tk]} and {i})")
        task_seen[tk] = i
        V = float(t.traffic_mb[tk])
        if len(set(g.bids)) != len(g.bids):
            violations.append(f"task {tk}: the group lists a bid twice")
        if len(g.bids) > d.n_max:
            violations.append(f"task {tk}: group of {len(g.bids)} bids > n_max {d.n_max}")
        sizes.append(len(g.bids))
        total = 0.0
        worst = 0.0
        gsum = 0.0
        gcost = 0.0
        for k, f in zip(g.bids, g.shares):
            dish = int(b.dish[k])
            if int(b.task[k]) != tk:
                violations.append(f"task {tk}: bid {k} is a bid for task {int(b.task[k])}")
            if dish in committed:
                violations.append(f"task {tk}: bid {k} is from dish {dish}, which is committed elsewhere")
            if dish in dish_won and dish_won[dish] != k:
                violations.append(f"dish {dish} wins twice (bids {dish_won[dish]} and {k})")
            dish_won.setdefault(dish, k)
            if f < -TOL:
                violations.append(f"task {tk}: bid {k} has negative share {f:g} Mb")
            if f > b.traffic_mb[k] * (1 + TOL) + TOL:
                violations.append(f"task {tk}: bid {k} carries {f:g} Mb > its traffic {b.traffic_mb[k]:g} Mb")
            air = b.bandwidth_mbps[k] * d.interval_s
            if f > air * (1 + TOL) + TOL:
                violations.append(f"task {tk}: bid {k} carries {f:g} Mb > bandwidth x interval {air:g} Mb")
            total += f
            worst = max(worst, float(b.delay_ms[k]))
            gcost += float(b.cost[k])
            r = b.reliability[k] if weighted else 1.0
            gsum += r * (w.energy * b.energy[k] + w.lifetime * b.lifetime[k]) * f / V
        if abs(total - V) > TOL * max(V, 1.0):
            violations.append(f"task {tk}: shares sum to {total:g} Mb, must cover its traffic {V:g} Mb")
        if worst > t.limit_ms[tk] * (1 + 1e-9):
            violations.append(f"task {tk}: group delay {worst:g} ms > limit {t.limit_ms[tk]:g} ms")
        if gcost > t.budget[tk] * (1 + 1e-9) + 1e-12:
            violations.append(f"task {tk}: group cost ${gcost:.6g} > budget ${t.budget[tk]:.6g}")
        dterm = w.delay * (1.0 - worst / t.base_ms[tk])
        energy_life += gsum
        delay_term += dterm
        utility += gsum + dterm
        cost += gcost
        if g.payments is not None:
            pay = 0.0
            for k, f, p in zip(g.bids, g.shares, g.payments):
                # c_k prices the whole bid of Delta_k Mb: carrying f_k costs the dish its pro-rata part
                carried = b.cost[k] * max(f, 0.0) / b.traffic_mb[k]
                if p < carried * (1 - 1e-9) - 1e-12:
                    violations.append(f"task {tk}: bid {k} is paid ${p:.6g} < the cost ${carried:.6g} of the "
                                      f"{f:g} Mb it carries (individual rationality)")
                    ir_fail += 1
                pay += p
                overpayment += p - carried
                carried_cost += carried
            if pay > t.budget[tk] * (1 + 1e-9) + 1e-12:
                violations.append(f"task {tk}: payments ${pay:.6g} > budget ${t.budget[tk]:.6g} (budget feasibility)")
                budget_fail += 1
            payment += pay
    if any(paid) and not all(paid):
        missing = [g.task for g, p in zip(solution.groups, paid) if not p]
        violations.append(f"payments are missing for the groups of tasks {missing[:10]}")
    served = len(solution.groups)
    details = {
        "served": served,
        "served_fraction": served / T,
        "energy_lifetime_term": float(energy_life),
        "delay_term": float(delay_term),
        "total_cost": float(cost),
        "utility_per_cost": float(utility / cost) if cost > 0 else None,  # SusCO's utility per $ of winning bids
        "mean_group_size": float(np.mean(sizes)) if sizes else 0.0,
        **_seed_metrics(d, solution),
    }
    if any(paid):
        details.update(total_payment=float(payment), carried_cost=float(carried_cost),
                       overpayment=float(overpayment), ir_violations=ir_fail, budget_violations=budget_fail)
    return Evaluation(objective=float(utility), feasible=not violations, violations=violations, details=details)


def _seed_metrics(d: Data, solution: Solution) -> dict:
    """The seed's evaluation metrics of a decision: satellite energy, battery life, end-to-end delay.

    A share f_k through bid k spends (1 - e_k) and consumes (1 - l_k) of what it would on the task's ISL path
    (e_k, l_k are those savings); traffic left on the ISL path spends it all. A task's delay is its group's
    slowest member, or the ISL path's when it is not served. Energy and life are None when the file lacks the
    per-task ISL figures (files from before issue 13).
    """
    t, b = d.tasks, d.bids
    T = len(t.source)
    task = np.array([g.task for g in solution.groups for _ in g.bids], dtype=int)
    bid = np.array([k for g in solution.groups for k in g.bids], dtype=int)
    share = np.array([f for g in solution.groups for f in g.shares], dtype=float)
    served = np.zeros(T, dtype=bool)
    served[task] = True
    slowest = np.zeros(T)
    np.maximum.at(slowest, task, b.delay_ms[bid])
    delay = np.where(served, slowest, t.base_ms)
    out = {"delay_mean_ms": float(delay.mean()), "delay_p50_ms": float(np.median(delay)),
           "delay_p95_ms": float(np.quantile(delay, 0.95)), "delay_max_ms": float(delay.max()),
           "share_under_120ms": float(np.mean(delay < 120.0))}  # the seed's CDF: tasks done within 120 ms
    for key, per_mb, saving in (("energy_j", t.energy_j_per_mb, b.energy), ("lifetime_consumed", t.life_per_mb,
                                                                               b.lifetime)):
        out[key] = None if per_mb is None else float(per_mb @ t.traffic_mb - np.sum(per_mb[task] * saving[bid] * share))
    return out


# --- generator ------------------------------------------------------------------------------------
# Figures and their sources: instances/cdgs/README.md.
_SHELLS = {  # planes, satellites per plane, altitude km, inclination deg
    "starlink-550": (72, 22, 550.0, 53.0),
    "starlink-2x": (72, 44, 550.0, 53.0),
    "oneweb": (12, 49, 1200.0, 87.9),
    "kuiper": (34, 34, 630.0, 51.9),
    "telesat": (27, 13, 1015.0, 98.98),
}
_AWS_GS = {  # AWS Ground Station locations (lat, lon)
    "Alaska": (64.8, -147.7), "Bahrain": (26.1, 50.6), "Cape Town": (-33.9, 18.4), "Dubbo": (-32.2, 148.6),
    "Hawaii": (21.3, -158.0), "Ireland": (53.3, -6.3), "Ohio": (40.0, -83.0), "Oregon": (45.6, -121.2),
    "Punta Arenas": (-53.2, -70.9), "Seoul": (37.6, 127.0), "Singapore": (1.35, 103.8), "Stockholm": (59.3, 18.1),
}
# Urban agglomerations (lat, lon, population in millions, UN World Urbanization Prospects 2018).
_CITIES = [
    (35.7, 139.7, 37.5), (28.6, 77.2, 28.5), (31.2, 121.5, 25.6), (-23.6, -46.6, 21.7), (19.4, -99.1, 21.6),
    (30.0, 31.2, 20.1), (19.1, 72.9, 20.0), (39.9, 116.4, 19.6), (23.8, 90.4, 19.6), (34.7, 135.5, 19.3),
    (40.7, -74.0, 18.8), (24.9, 67.0, 15.4), (-34.6, -58.4, 15.0), (29.6, 106.5, 14.8), (41.0, 29.0, 14.8),
    (22.6, 88.4, 14.7), (14.6, 121.0, 13.5), (6.5, 3.4, 13.5), (-22.9, -43.2, 13.3), (39.1, 117.2, 13.2),
    (-4.3, 15.3, 13.2), (23.1, 113.3, 12.6), (34.1, -118.2, 12.5), (55.8, 37.6, 12.4), (22.5, 114.1, 11.9),
    (31.5, 74.3, 11.7), (13.0, 77.6, 11.4), (48.9, 2.4, 10.9), (4.7, -74.1, 10.6), (-6.2, 106.8, 10.5),
    (13.1, 80.3, 10.5), (-12.0, -77.0, 10.4), (13.8, 100.5, 10.2), (37.6, 127.0, 10.0), (35.2, 136.9, 9.5),
    (17.4, 78.5, 9.5), (51.5, -0.1, 9.0), (35.7, 51.4, 8.9), (41.9, -87.6, 8.9), (30.7, 104.1, 8.8),
    (24.7, 46.7, 6.9), (40.4, -3.7, 6.5), (43.7, -79.4, 6.1), (-26.2, 28.0, 5.5), (-33.9, 151.2, 4.8),
    (-1.3, 36.8, 4.4),
]
_R_EARTH, _C_KM_MS, _FIBER_KM_MS, _ROUTE = 6371.0, 299.792458, 200.0, 1.5
_TRAFFIC_MB = 300.0
_BID_MB = (50.0, 100.0, 200.0, 400.0)
_QUEUE_MS = 16.0  # queueing per satellite on the ISL path
_GS_TIME, _EGRESS, _DISH_W_PER_MBPS, _KWH = 0.17, 0.09, 0.704, 0.12  # $/s, $/GB, W/Mbps, $/kWh
_NOMINAL_MBPS = {"gs": 800.0, "5g": 100.0}
_RELIABILITY = {"gs": (0.95, 0.999), "5g": (0.85, 0.99)}


def _unit(lat, lon) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _arc_km(u, v) -> np.ndarray:
    return _R_EARTH * np.arccos(np.clip(np.sum(u * v, axis=-1), -1.0, 1.0))


def _bid_cost(traffic_mb, bw_mbps, markup):
    """Asking price: ground-station time + egress + dish energy, times the dish's markup."""
    seconds = traffic_mb / bw_mbps
    energy_kwh = _DISH_W_PER_MBPS * bw_mbps * seconds / 3.6e6
    return (_GS_TIME * seconds + _EGRESS * traffic_mb / 8000.0 + _KWH * energy_kwh) * markup


def _budget(traffic_mb, rng):
    """A task pays up to 1.2-2.5 times the price of its traffic at a 5G dish's nominal rate."""
    return _bid_cost(traffic_mb, _NOMINAL_MBPS["5g"], 1.0) * rng.uniform(1.2, 2.5, size=np.shape(traffic_mb))


def _dish_pool(n_5g: int, rng):
    """AWS ground-station antennas (2 per site) and 5G base stations placed at cities by population."""
    gs = np.repeat(np.array(list(_AWS_GS.values())), 2, axis=0)
    city = np.array(_CITIES)
    pick = rng.choice(len(city), size=n_5g, p=city[:, 2] / city[:, 2].sum())
    bs = city[pick, :2] + rng.uniform(-1.5, 1.5, size=(n_5g, 2))
    latlon = np.vstack([gs, bs])
    kind = np.array(["gs"] * len(gs) + ["5g"] * n_5g)
    return latlon, kind


def _walker(planes: int, per: int, alt: float, inc: float, t_s: float):
    """Sub-satellite unit vectors, ECI positions and (plane, slot) of a Walker-delta shell at time t_s."""
    p, s = np.divmod(np.arange(planes * per), per)
    a = _R_EARTH + alt
    period = 2 * np.pi * np.sqrt(a ** 3 / 398600.4418)
    raan = 2 * np.pi * p / planes
    u = 2 * np.pi * (s / per + p / (planes * per)) + 2 * np.pi * t_s / period
    i = np.radians(inc)
    x = np.cos(raan) * np.cos(u) - np.sin(raan) * np.sin(u) * np.cos(i)
    y = np.sin(raan) * np.cos(u) + np.cos(raan) * np.sin(u) * np.cos(i)
    z = np.sin(u) * np.sin(i)
    eci = np.stack([x, y, z], axis=-1)
    rot = 2 * np.pi * t_s / 86164.0  # earth rotation
    ground = np.stack([np.cos(rot) * x + np.sin(rot) * y, -np.sin(rot) * x + np.cos(rot) * y, z], axis=-1)
    return ground, eci * a, p, s


def _legs(src, dst, p, s, planes, per):
    """The grid path src -> dst as two runs on rings: in-plane first, then across planes at the destination's slot.

    Returns the hop count, the in-plane leg (plane, first slot, satellites: the source included) and the cross
    leg (slot, first plane, satellites), each run ascending from its first position and wrapping around.
    """
    dp = (p[dst] - p[src]) % planes
    dp = np.where(dp > planes // 2, dp - planes, dp)
    ds = (s[dst] - s[src]) % per
    ds = np.where(ds > per // 2, ds - per, ds)
    a, c = np.abs(ds), np.abs(dp)
    slot_lo = np.where(ds >= 0, s[src], s[src] - a) % per
    plane_lo = np.where(dp >= 0, p[src] + 1, p[src] - c) % planes
    return a + c, (p[src], slot_lo, a + 1), (s[dst], plane_lo, c)


def _ring_sums(values, ring, lo, n):
    """Sums of ``values[ring, lo : lo + n]`` (rows are rings that wrap around), by prefix sums: O(1) a run."""
    cum = np.zeros((values.shape[0], 2 * values.shape[1] + 1))
    cum[:, 1:] = np.cumsum(np.tile(values, 2), axis=1)
    return cum[ring, lo + n] - cum[ring, lo]


def _ring_add(rings, length, ring, lo, n, amount):
    """(rings, length): ``amount`` added over every run ``ring, lo : lo + n`` (a difference array, then cumsum)."""
    width = 2 * length + 1
    start = ring * width + lo
    diff = np.bincount(start, amount, rings * width) - np.bincount(start + n, amount, rings * width)
    run = np.cumsum(diff.reshape(rings, width), axis=1)
    return run[:, :length] + run[:, length:2 * length]


def _walk_weight(src, dst, p, s, planes, per, weight):
    """Summed battery weight of the satellites transmitting on a grid path src -> dst (in-plane first)."""
    hops, (pl, slo, na), (sl, plo, nc) = _legs(src, dst, p, s, planes, per)
    grid = weight.reshape(planes, per)
    return hops, _ring_sums(grid, pl, slo, na) + _ring_sums(grid.T, sl, plo, nc)


def _walk_load(src, dst, p, s, planes, per, amount):
    """Per satellite, the summed ``amount`` of the grid paths src -> dst that it transmits on."""
    _, (pl, slo, na), (sl, plo, nc) = _legs(src, dst, p, s, planes, per)
    amount = np.broadcast_to(np.asarray(amount, dtype=float), np.shape(src))
    return (_ring_add(planes, per, pl, slo, na, amount) + _ring_add(per, planes, sl, plo, nc, amount).T).ravel()


def _constellation(preset: str, n_tasks: int | None, bids: int, tau: int, rng, soc=None, pool=None) -> dict:
    """One interval of ``preset`` at t = 60 tau s. A simulation hands in its batteries' ``soc`` and its fixed dish
    ``pool`` (latlon, kind); the generator draws both. ``paths`` in the result is what the simulation moves energy by."""
    from scipy.spatial import cKDTree

    planes, per, alt, inc = _SHELLS[preset]
    n_sat = planes * per
    T = n_sat if n_tasks is None else n_tasks
    if not 1 <= T <= n_sat:
        raise InputError("--size", f"must be 1..{n_sat} (tasks, one per satellite of {preset})")
    ground, eci, p, s = _walker(planes, per, alt, inc, tau * 60.0)
    # battery: satellites in the earth's shadow (sun along +x) run at a lower state of charge
    eclipse = (eci[:, 0] < 0) & (np.hypot(eci[:, 1], eci[:, 2]) < _R_EARTH)
    if soc is None:
        soc = np.where(eclipse, rng.uniform(0.25, 0.55, n_sat), rng.uniform(0.55, 0.95, n_sat))
    weight = wear_per_mb(soc)  # battery life a transmitted Mb consumes: grows exponentially as the charge falls
    sat_tree = cKDTree(ground)
    src = np.sort(rng.choice(n_sat, size=T, replace=False))
    hop_km = 2 * (_R_EARTH + alt) * np.sin(np.pi / per)
    hop_ms = _QUEUE_MS + hop_km / _C_KM_MS
    down_ms = alt / _C_KM_MS
    # destinations: cities by population; the path ends at the satellite over the destination
    city = np.array(_CITIES)
    dest = city[rng.choice(len(city), size=T, p=city[:, 2] / city[:, 2].sum()), :2]
    dest_u = _unit(dest[:, 0], dest[:, 1])
    dest_sat = sat_tree.query(dest_u)[1]
    base_hops, base_w = _walk_weight(src, dest_sat, p, s, planes, per, weight)
    base_ms = base_hops * hop_ms + down_ms + 1.0 + 5.0  # + gateway processing + last mile
    traffic = np.round(_TRAFFIC_MB * rng.uniform(0.9, 1.1, size=T), 1)
    # dishes: the `bids` nearest the source's sub-satellite point bid for its task
    latlon, kind = _dish_pool(max(2 * T, bids), rng) if pool is None else pool
    dish_u = _unit(latlon[:, 0], latlon[:, 1])
    dish_sat = sat_tree.query(dish_u)[1]
    k = min(bids, len(latlon))
    near = cKDTree(dish_u).query(ground[src], k=k)[1].reshape(T, k)
    task = np.repeat(np.arange(T), k)
    dish = near.ravel()
    pre_hops, pre_w = _walk_weight(src[task], dish_sat[dish], p, s, planes, per, weight)
    extra = rng.integers(0, 3, size=len(task))  # exit satellite 0-2 hops past the offload point
    pre_hops = pre_hops + extra
    pre_w = pre_w + extra * weight.mean()
    ground_ms = _arc_km(dish_u[dish], dest_u[task]) * _ROUTE / _FIBER_KM_MS
    delay = pre_hops * hop_ms + down_ms + 1.0 + ground_ms
    energy = np.clip((base_hops[task] - pre_hops) / (base_hops[task] + 1.0), 0.0, 1.0)
    life = np.clip(1.0 - pre_w / base_w[task], 0.0, 1.0)
    isl = {"energy_j_per_mb": _SIM_TX_J_PER_MB * (base_hops + 1.0), "life_per_mb": base_w}
    out = _bids_common(traffic, base_ms, rng, task, dish, kind, delay, energy, life, tau, isl,
                       source=src, meta={"satellites": n_sat, "dishes_gs": int((kind == "gs").sum()),
                                         "dishes_5g": int((kind == "5g").sum())})
    out["paths"] = {"grid": (p, s, planes, per), "source": src, "dest_sat": dest_sat, "exit_sat": dish_sat[dish],
                    "extra": extra, "eclipse": eclipse}
    return out


def _synthetic(n_tasks: int, bids: int, tau: int, rng, path_rng) -> dict:
    """Small instances: the paper's traffic, bid sizes and prices; delays and savings drawn directly.

    The ISL path's energy and battery life per Mb come from ``path_rng`` (so the other draws stay those of
    the files made before they existed): 3-12 transmissions at one drawn charge.
    """
    T = n_tasks
    n_dish = max(2, int(np.ceil(T * bids / 3)))  # each dish bids for about three tasks: dishes are contended
    kind = np.where(rng.random(n_dish) < 0.2, "gs", "5g")
    k = min(bids, n_dish)
    dish = np.concatenate([rng.choice(n_dish, size=k, replace=False) for _ in range(T)])
    task = np.repeat(np.arange(T), k)
    traffic = np.round(_TRAFFIC_MB * rng.uniform(0.9, 1.1, size=T), 1)
    base_ms = np.round(rng.uniform(80.0, 200.0, size=T), 2)
    delay = base_ms[task] * rng.uniform(0.6, 1.2, size=len(task))
    energy = rng.uniform(0.0, 0.6, size=len(task))
    life = rng.uniform(0.0, 0.6, size=len(task))
    sends = path_rng.integers(3, 13, size=T)
    isl = {"energy_j_per_mb": _SIM_TX_J_PER_MB * sends, "life_per_mb": sends * wear_per_mb(path_rng.uniform(0.25, 0.95, T))}
    return _bids_common(traffic, base_ms, rng, task, dish, kind, delay, energy, life, tau, isl,
                        source=np.arange(T), meta={"dishes": n_dish})


def _bids_common(traffic, base_ms, rng, task, dish, kind, delay, energy, life, tau, isl, source, meta) -> dict:
    n = len(task)
    dk = kind[dish]
    size = np.array(_BID_MB)[rng.integers(0, len(_BID_MB), size=n)]
    nominal = np.where(dk == "gs", _NOMINAL_MBPS["gs"], _NOMINAL_MBPS["5g"])
    bw = np.round(nominal * rng.uniform(0.8, 1.0, size=n), 2)
    lo = np.where(dk == "gs", _RELIABILITY["gs"][0], _RELIABILITY["5g"][0])
    hi = np.where(dk == "gs", _RELIABILITY["gs"][1], _RELIABILITY["5g"][1])
    rel = np.round(rng.uniform(lo, hi), 4)
    cost = np.round(_bid_cost(size, bw, rng.uniform(1.0, 1.5, size=n)), 5)
    wins = rng.binomial(tau, rng.uniform(0.0, 0.5, size=len(kind))) if tau else np.zeros(len(kind), dtype=int)
    data = {
        "tau": tau,
        "tasks": {"source": source.tolist(), "traffic_mb": traffic.tolist(), "base_ms": np.round(base_ms, 3).tolist(),
                  "limit_ms": np.round(1.1 * base_ms, 3).tolist(), "budget": np.round(_budget(traffic, rng), 5).tolist(),
                  **{k: [float(f"{x:.6g}") for x in v] for k, v in isl.items()}},
        "bids": {"task": task.tolist(), "dish": dish.tolist(), "traffic_mb": size.tolist(), "bandwidth_mbps": bw.tolist(),
                 "delay_ms": np.round(delay, 3).tolist(), "cost": cost.tolist(), "reliability": rel.tolist(),
                 "energy": np.round(energy, 4).tolist(), "lifetime": np.round(life, 4).tolist()},
        "dishes": {"wins": wins.tolist()},
    }
    return {"data": data, "meta": meta}


def generate(preset: str = "starlink-550", size: int | None = None, seed: int = 0, bids: int | None = None,
             interval: int = 10, budget_scale: Annotated[float, Field(gt=0, le=1e3)] = 1.0,
             utility: Utility = "unweighted", interval_s: Annotated[float, Field(gt=0, le=1e6)] | None = None) -> Instance:
    """An interval of ``preset`` with ``size`` tasks (default: every satellite of the shell; 6 for small).

    Options: ``bids`` per task (default 30, 5 for small), ``interval`` tau (the dishes' win history
    covers tau past intervals; 0: no history, every dish at 0 wins), ``budget_scale`` multiplies every
    task's budget (1: 1.2-2.5 times the price of its traffic at a 5G dish's nominal rate), ``utility``
    the objective (``data.utility``: the seed's unweighted savings, or reliability-weighted as before),
    ``interval_s`` the auction interval (default 60 s, 3 s for starlink-550-3s): a bid carries at most its
    bandwidth times it.
    """
    if int(interval) < 0:
        raise InputError("interval", "must be >= 0")
    rng = np.random.default_rng(seed)
    n_bids = int(bids if bids is not None else (5 if preset == "small" else 30))
    if n_bids < 1:
        raise InputError("bids", "must be >= 1")
    if preset == "small":
        n = 6 if size is None else int(size)
        if n < 1:
            raise InputError("--size", "must be >= 1 (tasks)")
        out = _synthetic(n, n_bids, int(interval), rng, np.random.default_rng([seed, 1]))
    else:
        shell = "starlink-550" if preset == "starlink-550-3s" else preset
        out = _constellation(shell, None if size is None else int(size), n_bids, int(interval), rng)
    if interval_s is not None or preset == "starlink-550-3s":
        out["data"]["interval_s"] = float(3.0 if interval_s is None else interval_s)
    T = len(out["data"]["tasks"]["source"])
    meta = {"generator": "edgeopt.problems.cdgs.generate", "preset": preset, "size": T, "seed": seed,
            "bids": n_bids, "interval": int(interval), **out["meta"]}
    name = f"{preset}-t{T}-b{n_bids}-s{seed}"
    if interval_s is not None:
        meta["interval_s"] = float(interval_s)
        name += f"-i{interval_s:g}s"
    if budget_scale != 1.0:  # after every draw, so that only the budgets change
        tasks = out["data"]["tasks"]
        tasks["budget"] = np.round(np.array(tasks["budget"]) * float(budget_scale), 5).tolist()
        meta["budget_scale"] = float(budget_scale)
        name += f"-x{budget_scale:g}"
    if utility != "unweighted":
        out["data"]["utility"] = meta["utility"] = utility
        name += f"-{utility}"
    return Instance(name=name, meta=meta, data=Data.model_validate(out["data"]))


def instance_bytes(preset: str, size: int | None, bids: int | None = None, **_) -> float:
    """About the bytes generating and writing an instance takes: 1 KiB per bid, measured peak RSS (15.7 KiB per
    task of 30 bids at 3,000 tasks) with a margin; the default size is a whole constellation (at most 3,168)."""
    T = (6 if preset == "small" else 3_168) if size is None else size
    return 1024.0 * T * (bids or 30)

def small_instance(seed: int) -> Instance:
    """3-6 tasks with 4-6 bids each from a contended dish pool; the MILP solves it in milliseconds."""
    rng = np.random.default_rng(seed)
    return generate("small", size=int(rng.integers(3, 7)), seed=seed, bids=int(rng.integers(4, 7)))


# --- battery model (the generator's lifetime savings; the system's battery wear) ----------------------
# Satellite battery figures the paper does not give (our assumptions, sized so that relaying traffic is
# about half of an eclipse's drain, as in the battery-aware routing studies SusCO builds on); the
# per-Mb transmit energy is the spec's 0.704 W/Mbps. Sources: README "Simulation".
_SIM_BATTERY_WH, _SIM_TX_J_PER_MB = 250.0, 0.704
_SIM_CYCLES, _SIM_DOD_REF, _SIM_DOD_HALVING = 30_000.0, 0.3, 0.15


def wear_per_mb(soc: np.ndarray) -> np.ndarray:
    """Battery life one transmitted Mb consumes at charge ``soc``: ``cycle_damage``'s slope at depth 1 - soc
    times the depth one Mb takes. The generator's lifetime savings and the referee's ``lifetime_consumed``."""
    rate = np.log(2) / _SIM_DOD_HALVING
    slope = rate * np.exp(rate * (1.0 - np.asarray(soc))) / (np.expm1(rate * _SIM_DOD_REF) * _SIM_CYCLES)
    return slope * _SIM_TX_J_PER_MB / (_SIM_BATTERY_WH * 3600.0)


def cycle_damage(dod_from: np.ndarray, dod_to: np.ndarray, cycles: float = _SIM_CYCLES, dod_ref: float = _SIM_DOD_REF,
                 halving: float = _SIM_DOD_HALVING) -> np.ndarray:
    """Battery life consumed by discharging from depth ``dod_from`` to ``dod_to`` (0 while charging).

    Cycle life halves with every ``halving`` of extra depth of discharge and is ``cycles`` at ``dod_ref``; a
    discharge from full to ``dod_ref`` consumes exactly 1/cycles, and the damage of a deeper step grows
    exponentially (the low-charge penalty SusCO cites).
    """
    def life_used(dod):  # by a discharge from full to depth dod
        return np.expm1(np.log(2) * np.asarray(dod) / halving) / (np.expm1(np.log(2) * dod_ref / halving) * cycles)

    return np.maximum(life_used(dod_to) - life_used(dod_from), 0.0)
