"""Step-split choice for ``stepsplit``: the bound-minimizing method, the seed's paradigms, and enumeration.

Every method optimizes the bound the instance selects (``data.bound``: the seed's tandem, or the single
server), through ``violation_bound``, the referee's computation. Either bound on Pr(T > T0) is
nondecreasing in the compute time: single server, for a fixed slot and theta every term of the MGF
bound grows with M_S(theta), which grows with the deterministic compute part; tandem, for a fixed theta
every term grows with x(v) = e^{-theta floor(v Delta / T_inf)}, which grows with T_inf, and the downlink
does not depend on the steps. Quality grows with both step counts. So for a given paradigm and L_prior
the best L_dec is the smallest that meets the quality floor: a frontier of one point per L_prior.
"""
from __future__ import annotations

import time

import numpy as np

from edgeopt import anytime
from edgeopt.problems.stepsplit import (
    MODES,
    Instance,
    Service,
    Solution,
    Unstable,
    quality,
    violation_bound,
)
from edgeopt.registry import method
from edgeopt.result import Outcome


def _value(d, mode: str, lp: int, ld: int) -> float:
    try:
        return violation_bound(d, Service(d, mode, lp, ld))[0]
    except Unstable:
        return np.inf


def _frontier(instance: Instance, mode: str) -> Outcome:
    d = instance.data
    (p_lo, p_hi), (d_lo, d_hi) = d.prior_steps, d.dec_steps
    best, choice = np.inf, None
    for lp in range(p_lo, p_hi + 1):
        dec = np.arange(d_lo, d_hi + 1)
        ok = np.flatnonzero(quality(d, lp, dec) >= d.quality.floor - 1e-9)
        if len(ok):
            val = _value(d, mode, lp, int(dec[ok[0]]))
            if val < best:
                best, choice = val, (lp, int(dec[ok[0]]))
    if choice is None:  # no split meets the floor (or none is stable): the best-quality one, flagged by the referee
        return Outcome(Solution(mode=mode, prior_steps=p_hi, dec_steps=d_hi))
    return Outcome(Solution(mode=mode, prior_steps=choice[0], dec_steps=choice[1]),
                   claimed=best if np.isfinite(best) else None)


@method("stepsplit", "min-bound", "heuristic")
def min_bound(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """Split paradigm: per L_prior the fewest L_dec meeting the quality floor, keep the smallest bound."""
    return _frontier(instance, "split")


@method("stepsplit", "edge-only", "baseline")
def edge_only(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """Seed 003's edge paradigm: every step on the edge, the image sent down; same frontier search."""
    return _frontier(instance, "edge")


@method("stepsplit", "device-only", "baseline")
def device_only(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """Seed 003's device paradigm: every step on the device, nothing sent; same frontier search."""
    return _frontier(instance, "device")


@method("stepsplit", "enumerate", "exact")
def enumerate_all(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """Exact: every paradigm and every (L_prior, L_dec) meeting the floor, bound computed for each.

    Needs no monotonicity argument; status optimal with bound = its value (the decision space is
    finite and fully searched). The bound ``data.bound`` selects is minimized over theta numerically
    at every point, the same computation the referee does. Cut short (time limit, stop request), it
    returns the best point so far as ``time_limit``, with no bound.
    """
    d = instance.data
    (p_lo, p_hi), (d_lo, d_hi) = d.prior_steps, d.dec_steps
    began = time.perf_counter()
    best, choice, complete = np.inf, None, True
    rows = [(mode, lp) for mode in MODES for lp in range(p_lo, p_hi + 1)]
    for mode, lp in rows:
        if anytime.stop_requested() or (time_limit is not None and time.perf_counter() - began > time_limit):
            complete = False
            break
        for ld in range(d_lo, d_hi + 1):
            if quality(d, lp, ld) >= d.quality.floor - 1e-9:
                val = _value(d, mode, lp, ld)
                if val < best:
                    best, choice = val, (mode, lp, ld)
                    anytime.report(Solution(mode=mode, prior_steps=lp, dec_steps=ld), claimed=float(val))
    if choice is None or not np.isfinite(best):
        return Outcome(None, status="infeasible" if complete else "time_limit")
    sol = Solution(mode=choice[0], prior_steps=choice[1], dec_steps=choice[2])
    if not complete:
        return Outcome(sol, claimed=best, status="time_limit", solver="enumeration")
    return Outcome(sol, claimed=best, status="optimal", bound=best, gap=0.0, solver="enumeration")
