"""``stepsplit`` — the queueing view of edge/device diffusion inference (seed 003, section 5.3).

Requests arrive as a Poisson stream (rate lambda). A request runs ``L_prior`` prior denoising steps on
the edge, ``L_dec`` decoding steps on the device, and the intermediate latent goes down the wireless
link in between (the seed's "split" paradigm; "edge" runs everything on the edge and sends the image,
"device" runs everything on the device). Choose the paradigm and (L_prior, L_dec) to minimize the
stochastic-network-calculus bound on ``Pr(T > T0)`` subject to a quality floor.

* Service time ``T_serv = compute + download`` with, for "split",
  ``compute = (O_E + O_prior L_prior) / f_ES + (O_D + O_dec L_dec) / f_UE`` and download
  ``J_dl / E[R]`` (spec; ``E[R] = B E[log2(1 + snr |h|^2)]`` over Rayleigh fading, closed form with
  the exponential integral). With ``fading`` on, each request instead sees its own block rate
  ``R = B log2(1 + snr |h|^2)``: blocks with SNR below ``outage_snr_db`` are lost and cost
  ``block_s`` each (geometric retries), which keeps every moment finite.
* Two queues, two bounds (``data.bound``). ``tandem`` (default; the seed's eqs. 6–12): the inference
  server and a per-slot downlink in series, each FIFO, in slots of ``slot_s``. ``single-server``: one
  work-conserving server holding a request through compute and download (M/G/1). The referee's
  simulation runs the queue the bound is about.
* Mean sojourn time by Pollaczek–Khinchine: ``E[T] = E[S] + lambda E[S^2] / (2 (1 - rho))``,
  ``rho = lambda E[S]``; raises :class:`Unstable` when ``rho >= 1``.
* Single-server MGF bound. Measuring arrivals in work (compound Poisson, ``E exp(theta A(t)) =
  exp(lambda t (M_S(theta) - 1))``) against a unit-rate server, a request's sojourn time is
  ``sup_u [A(t-u, t) - u] + S_new``. A union bound over slots of length Delta and Chernoff give, for
  any theta with ``a = lambda (M_S(theta) - 1) < theta``,
  ``Pr(T > T0) <= M_S(theta) e^{-theta T0} e^{a Delta} / (1 - e^{-(theta - a) Delta})`` (the seed's
  eq. 11 with ``r_eff = 1`` and work units). The slot is a proof device, so it is optimized in
  closed form: ``Delta* = ln(theta / a) / (theta - a)`` gives
  ``M_S(theta) e^{-theta T0} (theta / (theta - a)) (theta / a)^{a / (theta - a)}``. The bound is
  then minimized over theta in ``(0, theta_max)`` (``theta_max``: the root of ``a = theta``, found by
  bisection) by bisection on the sign of its log-derivative. Every theta gives a valid bound, so a
  local minimum is still an upper bound.
* ``simulate``: a seeded M/G/1 discrete-event simulation by the Lindley recursion, vectorized as
  ``W_n = C_n - min_{k <= n} C_k`` with ``C`` the partial sums of ``S_k - A_{k+1}``.
* Tandem bound (slots u of length Delta; arrivals of slot u enter at its start, Poisson(lambda Delta) per
  slot, eq. 6). The inference server holds a request for ``T_inf`` = the compute time (eq. 3: one server
  through both phases, so its stability is the seed's ``rho_tot = lambda E[T_infer] < 1``; eq. 7's product of
  the two phases' MGFs would count a request once per phase): service curve ``floor(v Delta / T_inf)``. The
  downlink sends ``N(u) = floor(R(u) Delta / J)`` whole requests in slot u (eq. 8; R at the mean rate, or
  with fading a Rayleigh rate per slot — the outage/retry fields do not enter) among those whose inference
  ended by the slot's start; they leave at its end. With ``x(v) = e^{-theta floor(v Delta / T_inf)}``,
  ``b = E e^{-theta N}`` and ``g(L) = sum_{v <= L} x(v) b^{L-v}`` (eq. 9, the MGF of the min-plus
  convolution), the union bound of eq. 10 with the one slot the downlink adds gives
  ``Pr(T > T0) <= sum_{tau >= 1} e^{lambda Delta (e^theta - 1) tau} g(tau + k0 - 2)``, ``k0 = floor(T0 /
  Delta)``, minimized over theta (eq. 12). The series is summed (exactly to a horizon, then a geometric tail
  from ``x(v) <= e^theta e^{-theta v Delta / T_inf}``) instead of relaxed by eq. 11's ``r_eff``, which is
  looser. Per-stage bounds (the seed's figure 8), each stage alone under the Poisson arrivals:
  inference ``sum_tau e^{rho_A tau} x(tau + k0 - 1)``, downlink ``b^{k0} e^{rho_A} / (1 - e^{rho_A} b)``.
"""
from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy.signal import lfilter
from scipy.special import exp1, hyperu

from edgeopt import model
from edgeopt.model import InputError, Model, check
from edgeopt.result import Evaluation

SENSE = "min"
# Axis labels with units for the experiment figures (``edgeopt experiment plot``), by column.
LABELS = {"objective": "MGF bound on Pr(T > T0)", "threshold_s": "T0 (s)",
          "details.violation_frequency": "simulated frequency of T > T0"}

PRESETS = {
    "seed003": "Zhang et al. table 3 (P_dl 31 dBm, B_dl 10 MHz, sigma^2 -100 dBm, Cascaded Diffusion FLOPs, "
               "J_img/J_dl), download at the mean rate",
    "seed003-fading": "the seed003 figures with a Rayleigh block rate per request (outage below 0 dB, retried)",
    "random": "random loads, processors and channels around the seed003 figures (small grids for tests)",
}
MODES = ("split", "edge", "device")
BOUNDS = ("tandem", "single-server")
MAX_SLOTS_TO_T0 = 100_000  # T0 / slot_s: the tandem series is summed slot by slot
MAX_PER_SLOT = 100_000  # requests the tandem's downlink sends in one slot, at most
_GL_X, _GL_W = np.polynomial.laguerre.laggauss(80)  # integrals against e^{-x} on [0, inf)


class Unstable(ValueError):
    """The load lambda E[T_serv] is >= 1: the queue grows without bound, no stationary delay exists."""


class Downlink(Model):
    power_dbm: float = Field(ge=-200, le=100, description="P_dl, dBm (-200 <= P <= 100)")
    bandwidth_mhz: float = Field(gt=0, le=1e6, description="B_dl, MHz (1e-6 <= B <= 1e6)")
    noise_dbm: float = Field(ge=-200, le=100, description="sigma^2, dBm (-200 <= sigma^2 <= 100)")
    path_loss_db: float = Field(ge=0, le=400, description="dB (0 <= PL <= 400)")
    fading: bool = Field(False, description="a Rayleigh block rate per request instead of the mean rate")
    outage_snr_db: float = Field(0.0, ge=-100, le=100, description="with fading: blocks below this SNR are lost "
                                                                   "and retried, dB (-100 <= SNR <= 100)")
    block_s: float = Field(0.001, gt=0, le=1e3, description="with fading: time lost per outage block, s "
                                                             "(0 < t <= 1e3)")


class Quality(Model):
    """Q = base + prior_gain (1 - e^{-prior_growth L_prior}) + dec_gain (1 - e^{-dec_growth L_dec}) (CLIP score)."""

    base: float = Field(ge=0, le=1e6, description="Q at no steps (0 <= base <= 1e6)")
    prior_gain: float = Field(ge=0, le=1e6, description="Q gained by many prior steps (0 <= gain <= 1e6)")
    prior_growth: float = Field(gt=0, le=1e3, description="per prior step (0 < growth <= 1e3)")
    dec_gain: float = Field(ge=0, le=1e6, description="Q gained by many decoding steps (0 <= gain <= 1e6)")
    dec_growth: float = Field(gt=0, le=1e3, description="per decoding step (0 < growth <= 1e3)")
    floor: float = Field(ge=0, le=1e6, description="least quality Q accepted (0 <= floor <= 1e6)")


MAX_STEPS = 10_000
Steps = Annotated[int, Field(ge=1, le=MAX_STEPS)]


class Data(Model):
    arrival_rate: float = Field(ge=1e-6, le=1e6, description="lambda, requests/s (1e-6 <= lambda <= 1e6)")
    threshold_s: float = Field(gt=0, le=1e6, description="T0 of the violation probability, s (0 < T0 <= 1e6)")
    edge_tflops: float = Field(ge=1e-6, le=1e6, description="f_ES, TFLOP/s (1e-6 <= f <= 1e6)")
    device_tflops: float = Field(ge=1e-6, le=1e6, description="f_UE, TFLOP/s (1e-6 <= f <= 1e6)")
    encode_tflop: float = Field(ge=0, le=1e6, description="O_E: feature encoding, TFLOP (0 <= O <= 1e6)")
    prior_step_tflop: float = Field(ge=1e-9, le=1e6, description="O_prior: one prior denoising step, TFLOP "
                                                                 "(1e-9 <= O <= 1e6)")
    decode_tflop: float = Field(ge=0, le=1e6, description="O_D: feature extraction / decoder, TFLOP (0 <= O <= 1e6)")
    dec_step_tflop: float = Field(ge=1e-9, le=1e6, description="O_dec: one decoding denoising step, TFLOP "
                                                               "(1e-9 <= O <= 1e6)")
    latent_mbit: float = Field(gt=0, le=1e6, description="J_dl: intermediate latent, Mbit (0 < J <= 1e6)")
    image_mbit: float = Field(gt=0, le=1e6, description="J_img: final image, Mbit (0 < J <= 1e6)")
    downlink: Downlink
    prior_steps: tuple[Steps, Steps] = Field(description=f"[min, max] of L_prior (1 <= L <= {MAX_STEPS})")
    dec_steps: tuple[Steps, Steps] = Field(description=f"[min, max] of L_dec (1 <= L <= {MAX_STEPS})")
    quality: Quality
    bound: Literal["tandem", "single-server"] = Field(
        "tandem", description="the objective: the seed's tandem bound (inference server, then a per-slot downlink) "
                              "or one work-conserving server; the referee simulates the same queue")
    slot_s: float = Field(0.5, gt=0, le=1e3, description="Delta: the tandem's slot, s (0 < Delta <= 1e3)")

    @model_validator(mode="after")
    def _consistent(self):
        # the floor; <= 0 fails the field's own "greater than 0" rule first
        check(self.downlink.bandwidth_mhz >= 1e-6, "data.downlink.bandwidth_mhz", "must be >= 1e-06 (1 Hz)")
        check(self.threshold_s <= MAX_SLOTS_TO_T0 * self.slot_s, "data.slot_s",
              f"must be >= data.threshold_s / {MAX_SLOTS_TO_T0} ({self.threshold_s / MAX_SLOTS_TO_T0:g})")
        for name in ("prior_steps", "dec_steps"):
            lo, hi = getattr(self, name)
            check(lo <= hi, f"data.{name}[0]", f"must be <= data.{name}[1] ({hi})")
        return self

    @cached_property
    def mean_snr(self) -> float:
        dl = self.downlink
        return 10 ** ((dl.power_dbm - dl.noise_dbm - dl.path_loss_db) / 10)

    @cached_property
    def mean_rate_mbps(self) -> float:
        """E[R] = B E[log2(1 + snr X)], X ~ Exp(1): (B / ln 2) e^{1/snr} E1(1/snr).

        Below -28 dB (x = 1/snr > 700) e^x overflows; there e^x E1(x) is taken as Tricomi's U(1, 1, x),
        the same function (SciPy's U is less accurate below, around 1e-10).
        """
        x = 1 / self.mean_snr
        ex1 = np.exp(x) * exp1(x) if x < 700 else hyperu(1, 1, x)
        return float(self.downlink.bandwidth_mhz / np.log(2) * ex1)


class Instance(model.Instance):
    problem = "stepsplit"
    data: Data


class Solution(Model):
    mode: Literal["split", "edge", "device"] = "split"
    prior_steps: Steps = Field(description=f"L_prior (1 <= L <= {MAX_STEPS})")
    dec_steps: Steps = Field(description=f"L_dec (1 <= L <= {MAX_STEPS})")


def quality(d: Data, prior, dec):
    q = d.quality
    return (q.base + q.prior_gain * (1 - np.exp(-q.prior_growth * np.asarray(prior)))
            + q.dec_gain * (1 - np.exp(-q.dec_growth * np.asarray(dec))))


class Service:
    """Service time of one paradigm and step split: deterministic compute plus the download."""

    def __init__(self, d: Data, mode: str, prior: int, dec: int):
        edge_work = d.encode_tflop + d.prior_step_tflop * prior
        dev_work = d.decode_tflop + d.dec_step_tflop * dec
        self.mode = mode
        if mode == "split":
            self.compute, self.bits = edge_work / d.edge_tflops + dev_work / d.device_tflops, d.latent_mbit
        elif mode == "edge":
            self.compute, self.bits = (edge_work + dev_work) / d.edge_tflops, d.image_mbit
        else:
            self.compute, self.bits = (edge_work + dev_work) / d.device_tflops, 0.0
        dl, s = d.downlink, d.mean_snr
        self.fading = dl.fading and self.bits > 0
        self.mean_rate = d.mean_rate_mbps
        if self.fading:
            self.x_min = 10 ** (dl.outage_snr_db / 10) / s  # |h|^2 below this: outage
            self.p_out = 1 - np.exp(-self.x_min)
            self.block = dl.block_s
            # download time of a successful block at |h|^2 = x_min + e, e ~ Exp(1) (memoryless)
            self._y = self.bits / (dl.bandwidth_mhz * np.log2(1 + s * (self.x_min + _GL_X)))
            self._snr, self._bw = s, dl.bandwidth_mhz

    def moments(self) -> tuple[float, float]:
        """(E[S], Var[S])."""
        if not self.fading:
            return self.compute + (self.bits / self.mean_rate if self.bits else 0.0), 0.0
        p = self.p_out
        ey, ey2 = _GL_W @ self._y, _GL_W @ self._y**2
        with np.errstate(divide="ignore"):  # every block in outage: infinite (``_delivered`` says so)
            eg, vg = p / (1 - p), p / (1 - p) ** 2
        return self.compute + self.block * eg + ey, self.block**2 * vg + ey2 - ey**2

    def mgf(self, theta: float) -> float:
        """M_S(theta) = E[e^{theta S}] (inf where it diverges)."""
        if not self.fading:
            return float(np.exp(theta * self.moments()[0]))
        p = self.p_out
        if p * np.exp(theta * self.block) >= 1:
            return np.inf
        retry = (1 - p) / (1 - p * np.exp(theta * self.block))
        return float(np.exp(theta * self.compute) * retry * (_GL_W @ np.exp(theta * self._y)))

    def slot_pmf(self, slot: float) -> np.ndarray:
        """Pr(N = k), k = 0, 1, ..., of N = min(floor(R slot / J), MAX_PER_SLOT), the requests the downlink sends in
        one slot (eq. 8): R at the mean rate, or with fading B log2(1 + snr |h|^2) drawn per slot; ends where it
        underflows. The cap keeps the pmf finite for tiny payloads; a slot that carries it is never the bottleneck."""
        if not self.fading:
            pmf = np.zeros(int(min(np.floor(self.mean_rate * slot / self.bits), MAX_PER_SLOT)) + 1)
            pmf[-1] = 1.0
            return pmf
        k_max = int(min(np.log2(1 + 745 * self._snr) * self._bw * slot / self.bits, MAX_PER_SLOT - 1)) + 1
        with np.errstate(over="ignore", invalid="ignore"):  # |h|^2 thresholds beyond any float: probability 0
            x = (np.exp2(np.arange(k_max + 1) * self.bits / (self._bw * slot)) - 1) / self._snr  # N >= k
            pmf = np.append(np.exp(-x[:-1]) * -np.expm1(x[:-1] - x[1:]), np.exp(-x[-1]))
        return np.nan_to_num(pmf)

    def slot_sample(self, n: int, slot: float, rng: np.random.Generator) -> np.ndarray:
        """N for ``n`` slots, drawn as :meth:`slot_pmf` describes."""
        if not self.fading:
            return np.full(n, len(self.slot_pmf(slot)) - 1)
        rate = self._bw * np.log2(1 + self._snr * rng.exponential(size=n))
        return np.minimum(np.floor(rate * slot / self.bits), MAX_PER_SLOT).astype(np.int64)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if not self.fading:
            return np.full(n, self.moments()[0])
        fails = rng.geometric(1 - self.p_out, size=n) - 1
        x = self.x_min + rng.exponential(size=n)
        return self.compute + fails * self.block + self.bits / (self._bw * np.log2(1 + self._snr * x))


def _delivered(svc: Service) -> None:
    """Unstable when no download ever ends: with fading, a block is in outage with probability 1 (to double
    precision), so every request is retried for ever and E[T_serv] is infinite, under either bound."""
    if svc.fading and not svc.p_out < 1:
        raise Unstable(f"unstable: every downlink block is in outage (Pr(|h|^2 < {svc.x_min:.4g}) = 1: outage_snr_db is "
                       "far above the mean SNR), so no request is delivered and E[T_serv] is infinite")


def _stable(d: Data, svc: Service) -> tuple[float, float]:
    _delivered(svc)
    mean, var = svc.moments()
    rho = d.arrival_rate * mean
    if rho >= 1:
        raise Unstable(f"unstable: load lambda*E[T_serv] = {rho:.4g} >= 1 (E[T_serv] = {mean:.4g} s); "
                       "the queue grows without bound, no delay is computed")
    return mean, var


def pk_mean_sojourn(d: Data, svc: Service) -> float:
    """Pollaczek–Khinchine mean sojourn time E[S] + lambda E[S^2] / (2 (1 - rho)); Unstable if rho >= 1."""
    mean, var = _stable(d, svc)
    lam = d.arrival_rate
    return mean + lam * (var + mean**2) / (2 * (1 - lam * mean))


def _log_bound(d: Data, svc: Service, theta: float, t0: float) -> float:
    m = svc.mgf(theta)
    a = d.arrival_rate * (m - 1)
    kappa = theta - a
    if not np.isfinite(m) or kappa <= 0:
        return np.inf
    return np.log(m) - theta * t0 + np.log(theta / kappa) + (a / kappa) * np.log(theta / a)


def _logsumexp(x: np.ndarray) -> float:
    """log(sum(exp(x))) without overflow: a max and one pass of exp (``np.logaddexp.reduce`` calls log1p and exp per
    pair, 6x slower, and it was most of ``enumerate``'s time)."""
    top = float(x.max())
    if not np.isfinite(top):
        return top
    return top + float(np.log(np.exp(x - top).sum()))


def _root(f, start: float) -> float:
    """The positive root of a concave ``f`` that is > 0 just above 0: bracketed by doubling, then bisection."""
    hi = start
    while f(hi) > 0:
        hi *= 2
    lo = 0.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
        if hi - lo <= 1e-12 * hi:
            break
    return lo


def _minimize(log_bound, theta_max: float, rtol: float = 1e-10) -> tuple[float, float]:
    """(min over theta in (0, theta_max) of e^{log_bound}, capped at 1; the theta), by bisection on the sign of
    the log-derivative to ``rtol`` in theta. Every theta gives a valid bound, so a local minimum (or a theta
    near it) is still an upper bound."""
    a, b = theta_max * 1e-9, theta_max * (1 - 1e-9)
    for _ in range(200):
        mid = (a + b) / 2
        h = 1e-7 * (b - a) + 1e-12 * mid
        if log_bound(mid + h) < log_bound(mid - h):
            a = mid
        else:
            b = mid
        if b - a <= rtol * b:
            break
    theta = (a + b) / 2
    return float(min(1.0, np.exp(log_bound(theta)))), float(theta)


def single_server_bound(d: Data, svc: Service, t0: float | None = None) -> tuple[float, float]:
    """(min over theta of the single-server MGF bound on Pr(T > t0), the minimizing theta); Unstable if rho >= 1."""
    t0 = d.threshold_s if t0 is None else t0
    mean, _ = _stable(d, svc)
    lam = d.arrival_rate

    def kappa(th):
        m = svc.mgf(th)
        return th - lam * (m - 1) if np.isfinite(m) else -np.inf

    return _minimize(lambda th: _log_bound(d, svc, th, t0), _root(kappa, 1.0 / mean))


class Tandem:
    """The seed's slotted tandem (module docstring) for one paradigm and split: the per-slot arrival rate, the
    inference server's completions per slot, and the downlink's per-slot pmf (None: nothing is sent)."""

    def __init__(self, d: Data, svc: Service):
        _delivered(svc)
        self.slot, self.lam = d.slot_s, d.arrival_rate * d.slot_s
        self.rate = d.slot_s / svc.compute
        if self.lam >= self.rate:
            raise Unstable(f"unstable: inference load lambda*T_inf = {d.arrival_rate * svc.compute:.4g} >= 1 "
                           f"(T_inf = {svc.compute:.4g} s); the queue grows without bound, no delay is computed")
        self.pmf = svc.slot_pmf(d.slot_s) if svc.bits else None
        if self.pmf is not None:
            sent = self.pmf @ np.arange(len(self.pmf))
            if self.lam >= sent:
                raise Unstable(f"unstable: the downlink sends E[N] = {sent:.4g} requests per {d.slot_s:g} s slot, "
                               f"<= lambda*slot = {self.lam:.4g}; the queue grows without bound, no delay is computed")
            with np.errstate(divide="ignore"):
                self._log_pmf = np.log(self.pmf)
            self._slots = np.arange(len(self.pmf))

    def log_arrivals(self, theta: float) -> float:
        """rho_A(theta) = lambda Delta (e^theta - 1): log of eq. 6's MGF per slot."""
        return self.lam * np.expm1(theta)

    def log_downlink(self, theta: float) -> float:
        """log b = log E e^{-theta N} (eq. 8 per slot)."""
        return _logsumexp(self._log_pmf - theta * self._slots)

    def log_inference(self, theta: float, v: np.ndarray) -> np.ndarray:
        """log x(v) = -theta floor(v Delta / T_inf) (eq. 7: the inference server's deterministic service)."""
        return -theta * np.floor(v * self.rate + 1e-9)

    def log_bound(self, theta: float, k0: int, stage: str) -> float:
        """Log of the tandem bound at ``theta`` (``stage`` 'total'), or of one stage's alone ('inference',
        'downlink'); +inf where its series diverges."""
        rho = self.log_arrivals(theta)
        if stage == "downlink":
            log_b = self.log_downlink(theta)
            return k0 * log_b + rho - np.log(-np.expm1(rho + log_b)) if rho + log_b < 0 else np.inf
        log_a = -theta * self.rate  # x(v) <= e^theta a^v
        log_b = None if stage == "inference" else self.log_downlink(theta)
        log_m = log_a if log_b is None else max(log_a, log_b)
        log_q = rho + log_m
        if log_q >= 0:
            return np.inf
        horizon = int(min(max(40 / -log_q, 16), 4096))  # past it the tail bound (looser near theta_max)
        tau = np.arange(1, horizon + 1)
        if stage == "inference":
            head = rho * tau + self.log_inference(theta, tau + k0 - 1)
            # sum_{tau > H} e^{rho tau} e^theta a^{tau + k0 - 1}
            tail = theta + (k0 - 1) * log_a + (horizon + 1) * log_q - np.log(-np.expm1(log_q))
        else:
            b = np.exp(log_b)
            lengths = np.arange(horizon + k0 - 1)  # L = 0 .. H + k0 - 2
            g = lfilter([1.0], [1.0, -b], np.exp(self.log_inference(theta, lengths)))  # eq. 9: sum x(v) b^{L-v}
            with np.errstate(divide="ignore"):
                log_g = np.log(np.concatenate([[0.0], g]))  # log_g[L + 1] = log g(L); g(-1) = 0
            head = rho * tau + log_g[tau + k0 - 1]
            # g(L) <= e^theta (L + 1) m^L: sum_{tau > H} (tau + k0 - 1) q^tau e^theta m^{k0 - 2}
            q = np.exp(log_q)
            tail = (theta + (k0 - 2) * log_m + (horizon + 1) * log_q
                    + np.log((horizon + k0) / (1 - q) + q / (1 - q) ** 2))
        return float(np.logaddexp(_logsumexp(head), tail))

    def bound(self, t0: float, stage: str = "total") -> tuple[float, float]:
        """(min over theta of the bound on Pr(T > t0), eq. 12; the minimizing theta)."""
        k0 = int(np.floor(t0 / self.slot + 1e-9))
        if self.pmf is None:
            stage = "inference"  # device paradigm: nothing crosses the downlink
        return _minimize(lambda th: self.log_bound(th, k0, stage), _root(lambda th: self._room(th, stage), 1.0),
                         rtol=1e-6)  # the bound is flat at its minimum: 1e-6 in theta moves it by ~1e-12

    def _room(self, theta: float, stage: str) -> float:
        """Decay rate of the stage's series at theta (> 0: it converges); concave, > 0 just above 0 when stable."""
        inference = theta * self.rate if stage != "downlink" else np.inf
        downlink = -self.log_downlink(theta) if stage != "inference" else np.inf
        return min(inference, downlink) - self.log_arrivals(theta)


def violation_bound(d: Data, svc: Service, t0: float | None = None) -> tuple[float, float]:
    """(the bound ``d.bound`` selects on Pr(T > t0), minimized over theta; the theta); Unstable if unstable."""
    t0 = d.threshold_s if t0 is None else t0
    return Tandem(d, svc).bound(t0) if d.bound == "tandem" else single_server_bound(d, svc, t0)


def simulate(d: Data, svc: Service, n: int = 200_000, seed: int = 0, warmup: int = 10_000) -> np.ndarray:
    """Sojourn times of ``n`` requests of the queue ``d.bound`` is about, seeded, after ``warmup``."""
    if d.bound == "tandem":
        return simulate_tandem(d, svc, n, seed, warmup)[0]
    return simulate_single_server(d, svc, n, seed, warmup)


def simulate_single_server(d: Data, svc: Service, n: int = 200_000, seed: int = 0,
                           warmup: int = 10_000) -> np.ndarray:
    """Sojourn times of ``n`` requests of a seeded M/G/1 FIFO simulation (Lindley), after ``warmup``."""
    rng = np.random.default_rng(seed)
    total = n + warmup
    service = svc.sample(total, rng)
    gaps = rng.exponential(1 / d.arrival_rate, size=total)
    steps = np.concatenate([[0.0], np.cumsum(service[:-1] - gaps[1:])])
    wait = steps - np.minimum.accumulate(np.minimum(steps, 0.0))
    return (wait + service)[warmup:]


def simulate_tandem(d: Data, svc: Service, n: int = 200_000, seed: int = 0,
                    warmup: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """(sojourn times, times to the end of inference) of ``n`` requests of a seeded simulation of the slotted
    tandem (module docstring), after ``warmup``.

    Arrivals of slot u enter at its start; the inference server is FIFO with service T_inf; slot u's downlink
    sends up to N(u) of the requests whose inference ended by its start, FIFO, and they leave at its end:
    cumulatively ``D(t) = min(D(t-1) + N(t-1), E(t-1))`` with E(w) the requests ready by slot w, unrolled as
    ``D(t) = C(t) + min(0, min_{w < t} E(w) - C(w+1))``, C the partial sums of N. Idle stretches longer than
    ``gap`` slots are cut (N is i.i.d., so an empty queue's slots change nothing) and the cut is checked.
    """
    rng = np.random.default_rng(seed)
    total, slot, t_inf = n + warmup, d.slot_s, svc.compute
    arrive = np.floor(np.cumsum(rng.exponential(1 / d.arrival_rate, size=total)) / slot)  # slot index
    k = np.arange(total)
    done = t_inf * (k + 1) + np.maximum.accumulate(arrive * slot - t_inf * k)  # FIFO, deterministic T_inf
    inference = (done - arrive * slot)[warmup:]
    if not svc.bits:
        return inference, inference
    ready = np.ceil(done / slot - 1e-9).astype(np.int64)  # the first slot starting at or after the end
    gap = 16  # grows (x4) until no request is still queued across a cut
    while True:
        cut = np.concatenate([[0], np.cumsum(np.maximum(np.diff(ready) - gap, 0))])  # slots removed before k
        packed = ready - cut
        horizon = int(packed[-1]) + 1
        while True:
            sent = np.concatenate([[0], np.cumsum(svc.slot_sample(horizon, slot, rng))])  # C(t), t = 0..horizon
            ready_by = np.searchsorted(packed, np.arange(horizon), side="right")  # E(w)
            left = sent[1:] + np.minimum(0, np.minimum.accumulate(ready_by - sent[1:]))  # D(t), t = 1..horizon
            if left[-1] >= total:
                break
            horizon *= 2
        leave = np.searchsorted(left, k + 1) + 1  # first t with D(t) >= k + 1: leaves at the end of slot t - 1
        cuts = np.flatnonzero(np.diff(cut) > 0)  # requests followed by a cut: they must have left before it
        if np.all(leave[cuts] <= packed[cuts + 1]):
            return (((leave + cut) - arrive) * slot)[warmup:], inference
        gap *= 4


SIM_REQUESTS, SIM_SEED = 100_000, 0  # the referee's simulation: fixed, so that its frequency is reproducible


def evaluate(instance: Instance, solution: Solution) -> Evaluation:
    """The referee: quality floor, step ranges, stability, the MGF bound on Pr(T > T0) ``data.bound`` selects,
    and beside it the frequency of T > T0 in a seeded simulation of the same queue (``violation_frequency``);
    for the tandem also each stage's bound alone and the simulated frequency for the inference stage."""
    d = instance.data
    lp, ld = solution.prior_steps, solution.dec_steps
    violations = []
    for name, val, (lo, hi) in (("prior_steps", lp, d.prior_steps), ("dec_steps", ld, d.dec_steps)):
        if not lo <= val <= hi:
            violations.append(f"{name} {val} outside [{lo}, {hi}]")
    q = float(quality(d, lp, ld))
    if q < d.quality.floor - 1e-9:
        violations.append(f"quality {q:.4f} < floor {d.quality.floor:g}")
    svc = Service(d, solution.mode, lp, ld)
    mean, var = svc.moments()
    details = {"quality": q, "service_mean_s": mean, "service_var_s2": var,
               "load": d.arrival_rate * mean, "threshold_s": d.threshold_s}
    t0 = d.threshold_s
    try:
        if d.bound == "tandem":
            tandem = Tandem(d, svc)
            bound, theta = tandem.bound(t0)
            sojourn, inference = simulate_tandem(d, svc, n=SIM_REQUESTS, seed=SIM_SEED)
            details.update(bound_inference=tandem.bound(t0, "inference")[0],
                           bound_downlink=tandem.bound(t0, "downlink")[0] if svc.bits else None,
                           violation_frequency_inference=float((inference > t0).mean()))
        else:
            bound, theta = single_server_bound(d, svc)
            sojourn = simulate_single_server(d, svc, n=SIM_REQUESTS, seed=SIM_SEED)
        details.update(status="stable", theta=theta, violation_frequency=float((sojourn > t0).mean()),
                       pk_mean_sojourn_s=pk_mean_sojourn(d, svc) if details["load"] < 1 else None)
    except Unstable as exc:
        violations.append(str(exc))
        details["status"] = "unstable"
        bound = None
    return Evaluation(objective=bound, feasible=not violations, violations=violations, details=details)


# --- generator ------------------------------------------------------------------------------------
# Seed 003 table 3: P_dl 31 dBm, B_dl 10 MHz, sigma^2 -100 dBm, [O_D, O_dec] = [1.1170, 3.5492] TFLOP,
# [O_E, O_prior] = [0.1940, 6.7598] TFLOP, [J_img, J_dl] = [5.2429, 1.0486] Mbit. Not in the seed
# (toolkit's choices, see instances/stepsplit/README.md): processors, path loss, load, T0, quality.
_SEED003 = {
    "arrival_rate": 0.2, "threshold_s": 5.0, "edge_tflops": 100.0, "device_tflops": 40.0,
    "encode_tflop": 0.1940, "prior_step_tflop": 6.7598, "decode_tflop": 1.1170, "dec_step_tflop": 3.5492,
    "latent_mbit": 1.0486, "image_mbit": 5.2429,
    "downlink": {"power_dbm": 31.0, "bandwidth_mhz": 10.0, "noise_dbm": -100.0, "path_loss_db": 128.1},
    "quality": {"base": 18.0, "prior_gain": 12.0, "prior_growth": 0.15, "dec_gain": 3.0, "dec_growth": 0.2,
                "floor": 29.0},
}


def generate(preset: str = "seed003", size: int | None = None, seed: int = 0,
             threshold_s: Annotated[float, Field(gt=0, le=1e6)] | None = None,
             bound: Literal["tandem", "single-server"] = "tandem") -> Instance:
    """``size`` = the largest step count of each stage (grid size x size; seed003: 30, random: 8).

    Option ``threshold_s`` sets T0 of the violation probability (default 5 s; random: drawn in [1, 3]);
    option ``bound`` the objective (``data.bound``: tandem, or single-server as before the seed's tandem).
    """
    n = (8 if preset == "random" else 30) if size is None else int(size)
    if not 1 <= n <= MAX_STEPS:
        raise InputError("--size", f"must be 1..{MAX_STEPS} (steps per stage)")
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in _SEED003.items()}
    data["prior_steps"], data["dec_steps"] = [1, n], [1, n]
    if preset == "seed003-fading":
        data["downlink"].update(fading=True, outage_snr_db=0.0, block_s=0.001)
    if preset == "random":
        rng = np.random.default_rng(seed)
        data.update(edge_tflops=float(rng.uniform(50, 200)), device_tflops=float(rng.uniform(10, 60)),
                    arrival_rate=float(rng.uniform(0.3, 1.0)), threshold_s=float(rng.uniform(1.0, 3.0)))
        data["downlink"].update(path_loss_db=float(rng.uniform(115, 135)), fading=bool(rng.random() < 0.5))
        growth = 3.0 / n  # scale the step gains to the grid
        data["quality"].update(prior_growth=growth, dec_growth=growth, floor=float(rng.uniform(24, 30)))
    meta = {"generator": "edgeopt.problems.stepsplit.generate", "preset": preset, "size": n, "seed": seed}
    name = f"{preset}-l{n}" + (f"-s{seed}" if preset == "random" else "")
    if threshold_s is not None:
        data["threshold_s"] = meta["threshold_s"] = float(threshold_s)
        name += f"-t{threshold_s:g}"
    if bound != "tandem":
        data["bound"] = meta["bound"] = bound
        name += f"-{bound}"
    return Instance(name=name, meta=meta, data=Data.model_validate(data))


def instance_bytes(preset: str, size: int | None, **_) -> float:
    """About the bytes generating and writing an instance takes: the size is a step count, the instance a few
    numbers, so 1 MiB whatever the size (``MAX_STEPS`` bounds it)."""
    return float(2**20)

def small_instance(seed: int) -> Instance:
    """A random 6x6 grid: the full enumeration takes well under a second."""
    return generate("random", size=6, seed=seed)
