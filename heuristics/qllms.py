"""QLLMS for ``qllms``: matrix completion of the profiles (SVT), stable matching (DAA), and the baselines.

Every method here sees the instance through ``Data.observed()`` (NaN where not measured) and through the
known figures (SLOs, memory needs, prices, capacities); completion turns the observations into an
estimate of latency, perplexity and the Available Quantization Set (AQS) that the schedulers act on.
"""
from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np

from edgeopt.limits import MipGap
from edgeopt.problems.qllms import Instance, Solution
from edgeopt.registry import NotApplicable, method

_TOL = 1e-9


# --- matrix completion ----------------------------------------------------------------------------
_STEP = 0.7  # dual step 0.7 / max(p_i, p_j): the curvature along row i, column j is ~ max(p_i, p_j), and
#              momentum needs a step below 1 / curvature (1.0 oscillated on the 20 %-observed hetero profiles)
_EDGE = 1.3  # a residual whose top singular value is within 30 % of the noise edge is taken for noise
_TESTABLE = 30  # the noise edge is an asymptotic: trusted only with >= 30 rows and columns
_STILL = 10.0  # the iterate has stopped moving: it changed by < 10 tol over a window


def _shrink(Y: np.ndarray, tau: float) -> tuple[np.ndarray, int, float]:
    """Singular value shrinkage D_tau(Y) of a tall Y via its Gram matrix; returns (D_tau(Y), rank, sigma_{r+1}).

    Thresholded singular values are far above sqrt(eps)*sigma_1, so the Gram route loses nothing that
    survives the threshold, and for our shapes (one side <= 200) one BLAS Gram plus a small LAPACK eigh
    beats a truncated SVD of the sparse Y (measured, 8 triplets: 2000 x 200 at 30 %: 4 ms against 12 ms
    for scipy's svds and 5 ms for a randomized SVD; 100 000 x 32 at 50 %: 3 ms against 195 and 102 ms).
    With V the r kept eigenvectors, D_tau(Y) = Y V f V^T:
    formed as (Y V f) V^T while r <= n2 / 8 (the skinny products win there), else as Y (V f V^T).
    sigma_{r+1} (the largest singular value left below tau; inf when none is) tells how far the next
    component is from entering.
    """
    w, V = np.linalg.eigh((Y.T @ Y).astype(float))
    s = np.sqrt(np.clip(w, 0.0, None))
    keep = s > tau
    Vk, f = V[:, keep].astype(Y.dtype), (1.0 - tau / s[keep]).astype(Y.dtype)
    r = int(keep.sum())
    X = ((Y @ Vk) * f) @ np.ascontiguousarray(Vk.T) if 8 * r <= Y.shape[1] else Y @ ((Vk * f) @ Vk.T)
    return X, r, (float(s[-r - 1]) if r < len(s) else np.inf)


def _top(Y: np.ndarray, flat: np.ndarray, values: np.ndarray) -> float:
    """Largest singular value of the matrix holding ``values`` at ``flat`` and 0 elsewhere (Y is scratch)."""
    Y.fill(0.0)
    Y.ravel()[flat] = values
    return float(np.sqrt(max(np.linalg.eigvalsh((Y.T @ Y).astype(float))[-1], 0.0)))


def svt(obs: np.ndarray, *, tau: float | None = None, delta: float | None = None, tol: float = 1e-4,
        max_iter: int = 500, stall_window: int = 10, stall_rtol: float = 0.05) -> np.ndarray:
    """Singular value thresholding (Cai, Candès, Shen 2010): complete ``obs`` (NaN = not observed).

    Solves min tau ||X||_* + ||X||_F^2 / 2 subject to X matching the observations, whose solution tends
    to the nuclear-norm minimizer (``nnm``) as tau grows (default tau = 5 sqrt(n1 n2)), by ascent on
    the dual: X_k = D_tau(Y_k), Y_{k+1} = Y_k + delta P_Omega(M - X_k), from the kicked start
    Y_0 = k0 (1.2 / p) P_Omega(M) (p = observed fraction). The plain iteration needs hundreds of steps;
    this one adds

    - Nesterov momentum, restarted whenever the residual falls by less than 0.1 % or the rank changes
      (a singular value crossing tau changes the map);
    - a step per entry, 0.7 / max(p_i, p_j) with p_i, p_j the observed fractions of its row and column
      (a scalar ``delta`` replaces it), so that sparsely observed rows converge as fast as the rest.

    It stops when ||P_Omega(X - M)||_F <= tol ||P_Omega(M)||_F, or with the previous iterate when the
    rank r would exceed the largest with r (m1 + m2 - r) <= |Omega| (m1, m2 = rows and columns with an
    observation): a rank-r matrix has that many unknowns, so beyond it the data determine nothing more
    and only noise is left to fit (4-column latency profiles get there before any other rule fires).
    Every ``stall_window`` iterations it also looks at the residual R = P_Omega(M - X):

    - R grew over the window: the step is too long for this matrix; halve it;
    - R fell by less than ``stall_rtol`` (a stall) and looks like noise, i.e. sigma_1(R) <= 1.3
      (1/sqrt(n1) + 1/sqrt(n2)) ||R||_F, near the edge of the spectrum of an i.i.d. matrix (tested only
      with >= 30 rows and columns): stop. The structure has been fitted; going on would fit the noise,
      which SVT does by letting in ever more components;
    - a stall with structure left: the dual is only accumulating R until the next singular value
      reaches tau. Jump ahead by as many steps as that surely takes (Weyl: floor((tau - sigma_{r+1}) /
      sigma_1(step R))), or stop if that is < 1. If the residual then more than doubles, X was not
      waiting but converging slowly: undo the jump, i.e. go on from the iterate and momentum it left
      (restarting the momentum there cost the TTFT profile of 100,000 tasks 51 more iterations), and
      jump no more;
    - X changed by less than 10 tol (relative) over the window: stop.

    ``stall_rtol=0`` turns the stall rules off; ``max_iter`` bounds the run. The iteration runs in single
    precision (half the memory traffic; its rounding, ~1e-7 relative, is far below the default tol) unless
    tol < 1e-5. Deterministic.
    """
    obs = np.asarray(obs, dtype=float)
    seen = ~np.isnan(obs)
    if not seen.any():
        return np.full(obs.shape, np.nan)
    wide = obs.shape[0] < obs.shape[1]
    o, s_ = (obs.T, seen.T) if wide else (obs, seen)
    n1, n2 = o.shape
    dtype = np.float32 if tol >= 1e-5 else np.float64
    flat = np.flatnonzero(s_)  # indices into the raveled matrix: ~10x faster than a boolean mask
    b = np.ravel(o)[flat].astype(dtype)
    norm = np.linalg.norm(b)
    if norm == 0:
        return np.zeros(obs.shape)
    tau = 5.0 * np.sqrt(n1 * n2) if tau is None else float(tau)
    p = s_.mean()
    kick = 1.2 / p if delta is None else float(delta)
    if delta is None:
        per_row = s_.sum(axis=1)
        rows = np.repeat(np.arange(n1), per_row)  # flat is sorted row by row
        den = (per_row / n2)[rows]
        np.maximum(den, s_.mean(axis=0)[flat - rows * n2], out=den)
        step = np.divide(_STEP, den, out=den).astype(dtype)
    else:
        step = dtype(kick)
    Y = np.zeros(o.shape, dtype)
    y = z = dtype(np.ceil(tau / (kick * _top(Y, flat, b))) * kick) * b
    edge = 1.0 / np.sqrt(n1) + 1.0 / np.sqrt(n2) if min(n1, n2) >= _TESTABLE else 0.0
    m1, m2 = np.count_nonzero(s_.any(axis=1)), np.count_nonzero(s_.any(axis=0))
    r = np.arange(1, min(m1, m2) + 1)
    max_rank = int(np.count_nonzero(r * (m1 + m2 - r) <= len(b)))  # a rank-r matrix has r (m1 + m2 - r) unknowns
    X = np.zeros(o.shape, dtype)
    t, prev, prev_rank, window, kicked, may_kick = 1.0, np.inf, -1, None, None, True
    for k in range(max_iter):
        Y.ravel()[flat] = z
        X_prev = X
        X, rank, nxt = _shrink(Y, tau)
        if rank > max_rank:  # more unknowns than observations: the data determine nothing more
            X = X_prev
            break
        g = np.take(X, flat)  # np.take: about twice as fast as X.ravel()[flat] here
        np.subtract(b, g, out=g)
        res = np.linalg.norm(g)
        if kicked is not None and res > 2 * kicked[0]:  # X was not waiting: go on from before the jump, jump no more
            res, y, z, t, prev, X, g, rank, nxt = kicked
            window, may_kick = None, False
        kicked = None
        if res <= tol * norm:
            break
        if window is None:
            window = k, res, X
        elif k - window[0] >= stall_window:
            if res > window[1]:  # the residual rose over the window: the step is too long here
                step, t, prev, window = step / 2, 1.0, np.inf, None
                continue
            stalled = window[1] - res < stall_rtol * res
            if rank and stalled and edge and _top(Y, flat, g) <= _EDGE * edge * res:
                break
            if rank and may_kick and stalled:
                m = float(np.floor((tau - nxt) / _top(Y, flat, step * g)))  # a Python float keeps float32
                if not m >= 1:
                    break
                kicked, y = (res, y, z, t, prev, X, g, rank, nxt), z + m * step * g
                z, t, prev, window = y, 1.0, np.inf, None
                continue
            if np.linalg.norm(X - window[2]) <= _STILL * tol * np.linalg.norm(X):
                break
            window = k, res, X
        y_new = step * g
        y_new += z
        if res > (1 - 1e-3) * prev or rank != prev_rank:
            t, z = 1.0, y_new
        else:
            t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2  # a Python float: a NumPy one would make z float64
            z = y_new - y
            z *= (t - 1) / t_new
            z += y_new
            t = t_new
        y, prev, prev_rank = y_new, res, rank
    X = X.astype(float)
    return X.T if wide else X


def nnm(obs: np.ndarray, solver: str | None = None) -> np.ndarray:
    """Nuclear-norm minimization matching the observed entries (CVXPY): the convex program SVT approximates.

    Small matrices only (an SDP underneath).
    """
    import cvxpy as cp

    obs = np.asarray(obs, dtype=float)
    seen = ~np.isnan(obs)
    X = cp.Variable(obs.shape)
    idx = np.nonzero(seen)
    prob = cp.Problem(cp.Minimize(cp.normNuc(X)), [X[idx] == obs[idx]])
    prob.solve(solver=solver)
    if X.value is None:
        raise RuntimeError(f"nuclear-norm minimization failed: {prob.status}")
    return np.asarray(X.value)


def fancy_complete(obs: np.ndarray, name: str, **options) -> np.ndarray:
    """Complete with fancyimpute's ``SoftImpute`` or ``IterativeSVD`` (optional extra ``edgeopt[fancyimpute]``)."""
    try:
        import fancyimpute
    except ImportError:
        raise NotApplicable("needs fancyimpute: pip install 'edgeopt[fancyimpute]'") from None
    obs = np.asarray(obs, dtype=float)
    if name == "softimpute":
        algo = fancyimpute.SoftImpute(verbose=False, **options)
    elif name == "iterativesvd":
        options.setdefault("rank", max(1, min(10, min(obs.shape) - 1)))
        algo = fancyimpute.IterativeSVD(verbose=False, **options)
    else:
        raise ValueError(f"unknown fancyimpute completer {name!r}")
    return np.asarray(algo.fit_transform(obs))


Completer = Literal["svt", "nnm", "softimpute", "iterativesvd"]  # the matrix completers ``complete`` knows


def complete(obs: np.ndarray, completer: str = "svt", **options) -> np.ndarray:
    """Complete a matrix (NaN = unseen) with ``svt``, ``nnm``, ``softimpute`` or ``iterativesvd``.

    Columns are centered on their observed means first (the mean of all observations for a column
    with none), so that a row with few observations falls back to the column means rather than to 0.
    """
    obs = np.asarray(obs, dtype=float)
    seen = ~np.isnan(obs)
    if seen.all() or not seen.any():
        return obs.copy()
    counts = seen.sum(axis=0)
    sums = np.where(seen, obs, 0.0).sum(axis=0)
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), sums.sum() / counts.sum())  # else the overall mean
    centered = obs - mean
    if completer == "svt":
        X = svt(centered, **options)
    elif completer == "nnm":
        X = nnm(centered, **options)
    else:
        X = fancy_complete(centered, completer, **options)
    X += mean
    np.copyto(X, obs, where=seen)
    return X


class Estimate(NamedTuple):
    """A scheduler's view: estimated latency (M,N,Q) and perplexity (M,Q), +inf = not runnable; the AQS."""

    lat: np.ndarray
    ppl: np.ndarray
    aqs: np.ndarray  # (M, N, Q) bool
    ttft: np.ndarray | None = None  # (M, N, Q) estimated time to first token, when the instance has TTFT figures


def estimate(instance: Instance, completer: str = "svt", **options) -> Estimate:
    """Complete the observed task x (server, level) latency (and TTFT) and task x level perplexity matrices
    in log space.

    Measured entries are kept as measured; entries known not runnable (measured null, or the model does
    not fit the GPU's memory) are +inf. An estimated TTFT is capped at the estimated latency (the prefill
    is part of it). The estimated AQS holds the (j, q) that fit and meet the SLOs of ``data.slo``.
    """
    d = instance.data
    M, N, Q = d.shape
    obs = d.observed()

    def fill(o: np.ndarray) -> np.ndarray:
        flat = o.reshape(M, -1)
        gaps = np.isnan(flat)
        if not gaps.any():
            return o
        usable = np.log(np.maximum(flat, 1e-12))  # NaN (not measured) stays NaN
        usable[np.isinf(usable)] = np.nan  # measured not runnable: nothing to complete from
        done = complete(usable, completer, **options)
        np.exp(done, out=done)
        np.copyto(done, flat, where=~gaps)  # measured entries stay as measured
        return done.reshape(o.shape)

    lat = np.where(d.fits, fill(obs.lat), np.inf)
    ppl = fill(obs.ppl)
    ttft = None if d.slo == "latency" else np.where(d.fits, np.minimum(fill(obs.ttft), lat), np.inf)
    return Estimate(lat, ppl, d.admissible(lat, ttft, ppl), ttft)


# --- stable matching ------------------------------------------------------------------------------
def deferred_acceptance(prefs: np.ndarray, rank: np.ndarray, size: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Task-proposing many-to-one deferred acceptance with capacities in load units, vectorized by rounds.

    ``prefs`` (M, K): server indices, most preferred first, -1 ends a list. ``rank`` (M, N): server j's
    rank of task i, lower = preferred, distinct within a column. ``size`` (M, N) or (M, N, R): load of i at
    j, per resource. ``cap`` (N,) or (N, R). Each round every free task proposes to its next server; every
    server that got proposals keeps the longest prefix of held + new tasks, in its rank order, whose load
    fits in every resource, and rejects the rest. With unit sizes and integer capacities this is the resident-proposing
    Gale-Shapley algorithm. Returns the server of every task, -1 = unmatched.

    Incremental: the held tasks of all servers stay in one array ordered by (server, rank); a round sorts only its
    new proposals and merges them in (``searchsorted`` + ``insert``), so it costs O(held + p log p) for p
    proposals instead of re-sorting every held task (100,000 tasks x 32 servers: 181 rounds, 4.6x faster).
    """
    M, K = prefs.shape
    N = len(cap)
    size, cap = (size, cap) if size.ndim == 3 else (size[..., None], cap[:, None])
    limit = cap * (1 + _TOL) + _TOL
    ptr = np.zeros(M, dtype=np.int64)
    match = np.full(M, -1, dtype=np.int64)
    low = int(rank.min()) if rank.size else 0
    stride = int(rank.max()) - low + 1 if rank.size else 1
    key = np.empty(0, dtype=np.int64)  # held: server * stride + the server's rank of the task, ascending
    task = np.empty(0, dtype=np.int64)
    load = np.empty((0, size.shape[2]))
    free = np.arange(M)
    while len(free):
        nxt = np.where(ptr[free] < K, prefs[free, np.minimum(ptr[free], K - 1)], -1)
        prop, ps = free[nxt >= 0], nxt[nxt >= 0]
        if not len(prop):
            break
        new = ps * stride + (rank[prop, ps] - low)
        o = np.argsort(new)
        new, prop, ps = new[o], prop[o], ps[o]
        at = np.searchsorted(key, new)
        key, task = np.insert(key, at, new), np.insert(task, at, prop)
        load = np.insert(load, at, size[prop, ps], axis=0)
        match[prop] = ps
        server = key // stride
        cum = np.cumsum(load, axis=0)
        first = np.searchsorted(key, np.arange(N) * stride)  # where each server's held list begins
        before = np.where(first[:, None] > 0, cum[np.maximum(first - 1, 0)], 0.0)
        keep = (cum - before[server] <= limit[server]).all(axis=1)
        rejected = task[~keep]
        key, task, load = key[keep], task[keep], load[keep]
        match[rejected] = -1
        ptr[rejected] += 1
        free = rejected
    return match


class Preferences(NamedTuple):
    prefs: np.ndarray  # (M, N) servers by ascending estimated cost, -1 = no more
    rank: np.ndarray  # (M, N) server-side rank: SLO satisfaction ratio ascending, ties by task index
    size: np.ndarray  # (M, N, R) estimated GPU-seconds (and GB with aggregate memory) at the chosen level
    quant: np.ndarray  # (M, N) the level task i would use at server j
    cap: np.ndarray  # (N, R)


def preferences(instance: Instance, est: Estimate) -> Preferences:
    """The QLLMS preference lists from an estimate.

    A task ranks the servers with a non-empty estimated AQS by their estimated cost at the cheapest
    admissible level (lowest bits on ties; server index on equal costs); under the seed's delta-cost the
    cost is the server's price, so a task takes the lowest admissible bits. A server ranks tasks by the
    satisfaction ratio ascending, ties by task index: est_lat / L_i, or with TTFT/TPOT SLOs the larger of
    est_ttft / TTFT SLO and est_tpot / TPOT SLO (the SLO nearer to being missed).
    """
    d = instance.data
    M, N, Q = d.shape
    cost = d.edge_cost(est.lat)
    c = np.where(est.aqs & ~np.isnan(cost), cost, np.inf)
    by_bits = np.argsort(d.bits, kind="stable")
    k = np.argmin(c[:, :, by_bits], axis=2)  # first minimum = lowest bits among equal costs
    quant = by_bits[k]
    best = np.take_along_axis(c, quant[:, :, None], axis=2)[:, :, 0]
    prefs = np.argsort(best, axis=1, kind="stable")
    prefs = np.where(np.isfinite(np.take_along_axis(best, prefs, axis=1)), prefs, -1)
    at = quant[:, :, None]
    lat = np.take_along_axis(est.lat, at, axis=2)[:, :, 0]
    if d.slo == "latency":
        ratio = lat / d.slo_lat[:, None]
    else:
        ttft = np.take_along_axis(est.ttft, at, axis=2)[:, :, 0]
        with np.errstate(invalid="ignore"):
            tpot = d.tpot(lat[..., None], ttft[..., None])[:, :, 0]  # at the chosen levels only
        ratio = np.maximum(ttft / d.tasks.column("slo_ttft")[:, None], tpot / d.tasks.column("slo_tpot")[:, None])
    size = d.usage(lat, quant)
    key = np.where(np.isfinite(best), ratio, np.inf)
    rank = np.empty((M, N), dtype=np.int64)
    order = np.argsort(key, axis=0, kind="stable")  # stable: ties by task index
    np.put_along_axis(rank, order, np.arange(M)[:, None], axis=0)
    return Preferences(prefs, rank, size, quant, d.capacity)


def _listed(server: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Order tasks by server, then by the server's rank: what each server keeps when it overflows."""
    M = len(server)
    r = np.where(server >= 0, rank[np.arange(M), np.maximum(server, 0)], np.arange(M))
    return np.lexsort((r, server == -1, server))


@method("qllms", "daa", "heuristic")
def daa(instance: Instance, *, seed: int = 0, time_limit: float | None = None, completer: Completer = "svt") -> Solution:
    """QLLMS: SVT completion, then task-proposing many-to-one deferred acceptance; O(M·N·Q) per round.

    Tasks propose to servers in ascending estimated cost, each at its cheapest estimated-admissible
    level; servers hold the tasks with the best SLO satisfaction ratio that fit their GPU-seconds.
    Unmatched tasks go to the cloud. Stable (no ``blocking_pairs``) with unit sizes; see there for
    GPU-second sizes. ``completer`` picks the completion (svt, nnm, softimpute,
    iterativesvd).
    """
    pref = preferences(instance, estimate(instance, completer))
    server = deferred_acceptance(pref.prefs, pref.rank, pref.size, pref.cap)
    M = len(server)
    quant = np.where(server >= 0, pref.quant[np.arange(M), np.maximum(server, 0)], -1)
    return Solution(server=server, quant=quant, order=_listed(server, pref.rank))


def blocking_pairs(instance: Instance, solution: Solution, est: Estimate | None = None) -> list[tuple[int, int]]:
    """(task, server) pairs that block ``solution`` under the QLLMS preferences of ``est`` (default: SVT's).

    i and j block when i prefers j to its assignment (the cloud is last) and j would keep i among its
    tasks: the load of j's tasks it ranks above i plus i's own fits j's capacity (in every resource). With unit sizes
    ``daa``'s matching has none (Gale-Shapley). With GPU-second sizes it can: a server that rejects
    a large task cuts off the smaller, lower-ranked tasks behind it in the same round, and does not
    call them back once the large one has moved on.
    """
    pref = preferences(instance, estimate(instance) if est is None else est)
    M, N = pref.rank.shape
    pos = np.full((M, N), N)
    rows = np.repeat(np.arange(M), N)
    ok = pref.prefs.ravel() >= 0
    pos[rows[ok], pref.prefs.ravel()[ok]] = np.tile(np.arange(N), M)[ok]
    server = np.asarray(solution.server)
    current = np.where(server >= 0, pos[np.arange(M), np.maximum(server, 0)], N)
    out = []
    for j in range(N):
        held = np.nonzero(server == j)[0]
        r = np.sort(pref.rank[held, j])
        sizes = pref.size[held, j][np.argsort(pref.rank[held, j])]
        load = np.concatenate([np.zeros((1, sizes.shape[1])), np.cumsum(sizes, axis=0)])
        cand = np.nonzero(pos[:, j] < current)[0]
        above = load[np.searchsorted(r, pref.rank[cand, j])]
        fits = (above + pref.size[cand, j] <= pref.cap[j] * (1 + _TOL) + _TOL).all(axis=1)
        out += [(int(i), j) for i in cand[fits]]
    return sorted(out)


# --- baselines ------------------------------------------------------------------------------------
def _greedy(instance: Instance, order: np.ndarray, score: np.ndarray, lat: np.ndarray) -> Solution:
    """Tasks in ``order`` each take the (j, q) of least ``score`` (inf = not allowed) whose estimated usage
    (GPU-seconds at latency ``lat``, and GB with aggregate memory) fits what is left on j; the cloud when
    none does."""
    d = instance.data
    M, N, Q = d.shape
    left = d.capacity.copy()
    server, quant = np.full(M, -1), np.full(M, -1)
    flat_score = score.reshape(M, -1)
    flat_size = d.usage(lat).reshape(M, N * Q, -1)
    js = np.repeat(np.arange(N), Q)
    for i in order:
        room = (flat_size[i] <= left[js] * (1 + _TOL) + _TOL).all(axis=1)
        s = np.where(room, flat_score[i], np.inf)
        k = int(np.argmin(s))
        if np.isfinite(s[k]):
            server[i], quant[i] = divmod(k, Q)
            left[server[i]] -= flat_size[i, k]
    return Solution(server=server, quant=quant, order=np.asarray(order))


@method("qllms", "random", "baseline")
def random_pair(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """Random: tasks in random order, each to a random estimated-admissible (server, level) with room left."""
    rng = np.random.default_rng(seed)
    est = estimate(instance)
    M = instance.data.shape[0]
    score = np.where(est.aqs, rng.random(est.aqs.shape), np.inf)
    return _greedy(instance, rng.permutation(M), score, est.lat)


def _fp16_only(instance: Instance, est: Estimate) -> tuple[np.ndarray, np.ndarray]:
    d = instance.data
    q16 = int(np.argmax(d.bits))
    cost = d.edge_cost(est.lat)
    only = np.zeros(est.aqs.shape, dtype=bool)
    only[:, :, q16] = True
    return np.where(only & est.aqs & ~np.isnan(cost), cost, np.inf), q16


@method("qllms", "edf", "baseline")
def edf(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """EDF: no quantization (fp16); tightest latency SLO first, each to its cheapest estimated-feasible server with room."""
    est = estimate(instance)
    score, _ = _fp16_only(instance, est)
    d = instance.data
    return _greedy(instance, np.lexsort((np.arange(d.shape[0]), d.slo_lat)), score, est.lat)


@method("qllms", "mef", "baseline")
def mef(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """MEF: no quantization (fp16); smallest memory need first, each to its cheapest estimated-feasible server with room."""
    est = estimate(instance)
    score, q16 = _fp16_only(instance, est)
    d = instance.data
    need = np.where(np.isnan(d.need[:, q16]), np.inf, d.need[:, q16])
    return _greedy(instance, np.lexsort((np.arange(d.shape[0]), need)), score, est.lat)


@method("qllms", "melange", "baseline")
def melange(instance: Instance, *, seed: int = 0, time_limit: float | None = None,
            mip_gap: MipGap = 1e-4) -> Solution:
    """Mélange (arXiv 2404.14527): min-cost ILP placement at fp16 only (HiGHS via SciPy, to ``mip_gap``),
    within every server's GPU-seconds (and, with aggregate memory, its GB).

    Mélange assumes full profiling; with partial observation it plans on the SVT-completed profile
    (the referee charges what that gets wrong). Tasks with no fp16 option and no cloud stay unplaced.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_array

    d = instance.data
    M, N, Q = d.shape
    est = estimate(instance)
    score, q16 = _fp16_only(instance, est)
    ti, tj = np.nonzero(np.isfinite(score[:, :, q16]))
    tc = np.nonzero(~np.isnan(d.cloud))[0]
    coverable = np.zeros(M, dtype=bool)
    coverable[ti] = coverable[tc] = True
    rows = np.cumsum(coverable) - 1  # row of each coverable task
    nx, ny = len(ti), len(tc)
    c = np.r_[score[ti, tj, q16], d.cloud[tc]]
    n_rows = int(coverable.sum())
    A_assign = csr_array((np.ones(nx + ny), (np.r_[rows[ti], rows[tc]], np.arange(nx + ny))), shape=(n_rows, nx + ny))
    cap = d.capacity
    R = cap.shape[1]
    use = d.usage(est.lat)[ti, tj, q16]  # (nx, R): GPU-seconds, and GB with aggregate memory
    A_cap = csr_array((use.ravel(), ((tj[:, None] * R + np.arange(R)).ravel(), np.repeat(np.arange(nx), R))),
                      shape=(N * R, nx + ny))
    res = milp(c, integrality=np.ones(nx + ny), bounds=Bounds(0, 1),
               constraints=[LinearConstraint(A_assign, 1, 1), LinearConstraint(A_cap, -np.inf, cap.ravel())],
               options={"mip_rel_gap": float(mip_gap)} | ({} if time_limit is None else {"time_limit": float(time_limit)}))
    if res.x is None:
        raise NotApplicable(f"the fp16 placement ILP has no solution ({res.message})")
    x = res.x[:nx] > 0.5
    server, quant = np.full(M, -1), np.full(M, -1)
    server[ti[x]], quant[ti[x]] = tj[x], q16
    return Solution(server=server, quant=quant)
