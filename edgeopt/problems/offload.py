"""``offload`` — joint denoising-step choice, step offloading and resource allocation (TS-MITO).

A cloud server runs the full text-to-video diffusion transformer for the first ``c_n`` (coarse)
steps of user n's request; the chosen edge server ``m(n)`` receives the latent over fibre, runs the
remaining ``q_n = o_n - c_n`` steps with its lighter model and sends the video over the wireless
down-link. Maximize ``sum_n w1 U_n - w2 T_n - w3 E_n`` (quality, delay, energy) over the discrete
choices (m, o, c) and the continuous shares of cloud SMs, edge SMs, bandwidth and power. See
``specs/offload.md``; the figures of the presets are sourced in ``instances/offload/README.md``.

What crosses the fibre (``data.fibre``): under ``crossing`` (default; seed 000: the edge "receives the
intermediate latent" to refine the remaining steps, and "latent plus final video" reach hundreds of MB) a user
whose steps all run on the cloud (c = o) sends its finished video S_n over the fibre, the others the latent
S_lat; ``always-latent`` (the reading before issue 13) charges S_lat / R_m to every user. The cloud always
starts (c >= 1), so nothing runs on an edge alone.

Units: FLOPs in TFLOP, SM throughput in TFLOP/s, sizes in Mbit, rates in Mbit/s, bandwidth in MHz,
power in W, energy in J, time in s.
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
LABELS = {"objective": "objective w1 U - w2 T - w3 E", "utility": "utility weight w1",
          "delay_per_s": "delay weight w2 (per s)", "energy_per_j": "energy weight w3 (per J)",
          "details.utility_total": "total utility U", "details.delay_total_s": "total delay T (s)",
          "details.energy_total_j": "total energy E (J)"}

PRESETS = {
    "paper": "TS-MITO setting: 15 users, 3 edge servers (Latte-L/2, Latte-B/2 ...), 1 cloud (Open-Sora Plan v1.1.0), "
             "50-80 steps",
    "small": "2 edge servers, few users (default 3) and a short step range, for the exact MINLP (N <= 6, M <= 3)",
    "tradeoff": "like small (o 4-16, c 1-8) but weights (40, 1/s, 1e-4/J) and half the quality growth: the optimum "
                "has interior steps (o < o_max or c_min < c < o), so the gap table tests the heuristic",
    "delay-sensitive": "paper with the delay weight 0.1/s (10x): delay is a third of the utility term, the regime "
                       "of the paper's allocation comparison (TS-MITO vs Equal/Proportional)",
}
Fibre = Literal["crossing", "always-latent"]
TOL = 1e-6  # relative slack the referee grants on resource sums (solver round-off)
MAX_STEPS = 10_000


class Weights(Model):
    utility: float = Field(ge=0, le=1e6, description="w1, per unit of quality U in [0, 1] (0 <= w1 <= 1e6)")
    delay_per_s: float = Field(ge=1e-9, le=1e6, description="w2, per second (1e-9 <= w2 <= 1e6); > 0 or the "
                                                           "download rate has no lower bound")
    energy_per_j: float = Field(ge=0, le=1e6, description="w3, per joule (0 <= w3 <= 1e6)")


class Server(Model):
    name: str
    model: str = Field(description="diffusion transformer it runs (documentation only)")
    tflops_per_step: float = Field(ge=1e-6, le=1e6, description="F: TFLOP of one denoising step (classifier-free "
                                                                "guidance incl.; 1e-6 <= F <= 1e6)")
    sms: float = Field(ge=1e-3, le=1e6, description="V: streaming multiprocessors to share among its users "
                                                    "(1e-3 <= V <= 1e6)")
    j_per_tflop: float = Field(ge=0, le=1e6, description="kappa: energy per TFLOP, J (0 <= kappa <= 1e6)")


class Edge(Server):
    fibre_mbps: float = Field(ge=1e-6, le=1e6, description="R_m: cloud -> edge fibre rate, Mbit/s "
                                                           "(1e-6 <= R_m <= 1e6)")
    bandwidth_mhz: float = Field(gt=0, le=1e6, description="B_m: down-link bandwidth, MHz (1e-6 <= B_m <= 1e6)")
    power_w: float = Field(ge=1e-6, le=1e4, description="P_m: total transmit power, W (1e-6 <= P_m <= 1e4)")
    quality_growth: float = Field(gt=0, le=1e3, description="zeta_m: quality 1 - exp(-zeta_m o) of its model "
                                                            "(0 < zeta_m <= 1e3)")


Step = Annotated[int, Field(ge=1, le=MAX_STEPS)]


class Steps(Model):
    o_min: Step = Field(description=f"least total steps (1 <= o <= {MAX_STEPS})")
    o_max: Step = Field(description=f"most total steps (1 <= o <= {MAX_STEPS})")
    c_min: Step = Field(description=f"cloud steps at least (the cloud always starts the denoising; "
                                    f"1 <= c <= {MAX_STEPS})")
    c_max: Step = Field(description=f"cloud steps at most (1 <= c <= {MAX_STEPS})")

    @model_validator(mode="after")
    def _order(self):
        check(self.o_min <= self.o_max, "data.steps.o_min", f"must be <= o_max ({self.o_max})")
        check(self.c_min <= self.c_max, "data.steps.c_min", f"must be <= c_max ({self.c_max})")
        check(self.c_min <= self.o_max, "data.steps.c_min", f"must be <= o_max ({self.o_max}): cloud steps are part "
                                                            "of the total steps")
        return self


class Data(Model):
    weights: Weights
    steps: Steps
    tflops_per_sm: float = Field(ge=1e-6, le=1e6, description="phi: effective TFLOP/s of one SM (1e-6 <= phi <= 1e6)")
    latent_mbit: float = Field(ge=0, le=1e6, description="S_lat: latent sent cloud -> edge, Mbit (0 <= S <= 1e6)")
    noise_w_per_hz: float = Field(ge=1e-30, le=1e-10, description="N0: noise power spectral density, W/Hz "
                                                                  "(1e-30 <= N0 <= 1e-10)")
    p_max_w: float = Field(ge=1e-6, le=1e4, description="per-user transmit power cap, W (1e-6 <= p <= 1e4)")
    cloud: Server
    edges: list[Edge] = Field(min_length=1)
    video_mbit: Array(float, 1, ge=1e-6, le=1e6) = Field(description="S_n: video of each user, Mbit "
                                                                     "(1e-6 <= S <= 1e6)")
    gain: Array(float, 2, ge=1e-30, le=1) = Field(description="g: channel power gain, (users, edges) "
                                                              "(1e-30 <= g <= 1)")
    alignment: Array(float, 2) = Field(  # checked below, with the message naming the interval
        description="A: CLIP alignment of each user's prompt with each edge's model, (users, edges) (0 <= A <= 1)",
        json_schema_extra={"items": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}}})
    fibre: Fibre = Field("crossing", description="what crosses the fibre: the latent, or the finished video when "
                                                 "the cloud ran every step (crossing); the latent always "
                                                 "(always-latent)")

    @model_validator(mode="after")
    def _consistent(self):
        N, M = len(self.video_mbit), len(self.edges)
        check(N >= 1, "data.video_mbit", "must list at least one user")
        check_shape(self.gain, (N, M), "data.gain", "(users, edges)")
        check_shape(self.alignment, (N, M), "data.alignment", "(users, edges)")
        check((self.alignment >= 0) & (self.alignment <= 1), "data.alignment", "must be in [0, 1]")
        for m, e in enumerate(self.edges):  # the floor; <= 0 fails the field's own "greater than 0" rule first
            check(e.bandwidth_mhz >= 1e-6, f"data.edges[{m}].bandwidth_mhz", "must be >= 1e-06 (1 Hz)")
        return self

    @property
    def n_users(self) -> int:
        return len(self.video_mbit)

    @cached_property
    def snr_per_w_mhz(self) -> np.ndarray:
        """(N, M) gamma = g / (N0 * 1e6): SNR of p watts over b MHz is gamma * p / b."""
        return self.gain / (self.noise_w_per_hz * 1e6)

    @cached_property
    def edge_flops(self) -> np.ndarray:
        return np.array([e.tflops_per_step for e in self.edges])

    @cached_property
    def edge_kappa(self) -> np.ndarray:
        return np.array([e.j_per_tflop for e in self.edges])

    @cached_property
    def zeta(self) -> np.ndarray:
        return np.array([e.quality_growth for e in self.edges])

    @cached_property
    def fibre_mbps(self) -> np.ndarray:
        return np.array([e.fibre_mbps for e in self.edges])

    def fibre_s(self, users, edge, cloud_only) -> np.ndarray:
        """Fibre time cloud -> ``edge`` of ``users``, s: the latent, except the finished video S_n of a user whose
        steps all ran on the cloud (``cloud_only``, c = o) under ``fibre="crossing"``."""
        sends_video = np.asarray(cloud_only) & (self.fibre == "crossing")
        return np.where(sends_video, self.video_mbit[users], self.latent_mbit) / self.fibre_mbps[edge]


class Instance(model.Instance):
    problem = "offload"
    data: Data


Share = Annotated[float, Field(ge=-1e9, le=1e9)]  # the referee judges sign and capacity (solver round-off)


class Solution(Model):
    edge: list[Annotated[int, Field(ge=0, le=1_000_000)]] = Field(description="edge server of every user "
                                                                          "(0 <= x <= 1e6)")
    steps: list[Annotated[int, Field(ge=0, le=MAX_STEPS)]] = Field(
        description=f"o_n: total denoising steps (0 <= o <= {MAX_STEPS})")
    cloud_steps: list[Annotated[int, Field(ge=0, le=MAX_STEPS)]] = Field(
        description=f"c_n: steps on the cloud (the first ones; 0 <= c <= {MAX_STEPS}); q_n = o_n - c_n on the edge")
    cloud_sms: list[Share] = Field(description="v_cs_n: cloud SMs (|x| <= 1e9)")
    edge_sms: list[Share] = Field(description="v_n: SMs of the user's edge server (|x| <= 1e9)")
    bandwidth_mhz: list[Share] = Field(description="b_n: down-link bandwidth, MHz (|x| <= 1e9)")
    power_w: list[Share] = Field(description="p_n: down-link transmit power, W (|x| <= 1e9)")


def rate_mbps(b: np.ndarray, p: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Shannon rate b log2(1 + gamma p / b) in Mbit/s for b MHz, p W (0 where b or p is 0)."""
    b, p = np.asarray(b, float), np.asarray(p, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = b * np.log2(1.0 + gamma * p / b)
    return np.where((b > 0) & (p > 0), r, 0.0)


def quality(alignment: np.ndarray, zeta: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """U = A (1 - exp(-zeta o)): CLIP alignment times the fitted quality growth (MD-VQM)."""
    return alignment * (1.0 - np.exp(-zeta * steps))


def kkt_split(work: np.ndarray, total: float) -> np.ndarray:
    """argmin sum_n a_n / v_n s.t. sum_n v_n <= total: v_n = total sqrt(a_n) / sum_k sqrt(a_k).

    The objective is convex and decreasing in every v_n, so the constraint is tight; stationarity
    a_n / v_n**2 = mu gives v_n = sqrt(a_n / mu), and the constraint fixes mu. The minimum is
    (sum_n sqrt(a_n))**2 / total (Cauchy-Schwarz). Users with a_n = 0 get nothing.
    """
    root = np.sqrt(np.maximum(np.asarray(work, float), 0.0))
    s = root.sum()
    return total * root / s if s > 0 else np.zeros_like(root)


def evaluate(instance: Instance, solution: Solution) -> Evaluation:
    """The referee: every constraint of the spec and the objective with its per-user parts."""
    d = instance.data
    N, M = d.n_users, len(d.edges)
    fields = ("edge", "steps", "cloud_steps", "cloud_sms", "edge_sms", "bandwidth_mhz", "power_w")
    for f in fields:
        if len(getattr(solution, f)) != N:
            raise InputError(f"solution.{f}", f"must list one value per user ({N}), got {len(getattr(solution, f))}")
    m = np.array(solution.edge, dtype=int)
    for n in range(N):
        if not 0 <= m[n] < M:
            raise InputError(f"solution.edge[{n}]", f"must be an edge index 0..{M - 1}, got {m[n]}")
    o = np.array(solution.steps, dtype=int)
    c = np.array(solution.cloud_steps, dtype=int)
    vcs, v = np.array(solution.cloud_sms, float), np.array(solution.edge_sms, float)
    b, p = np.array(solution.bandwidth_mhz, float), np.array(solution.power_w, float)
    q = o - c
    s = d.steps
    violations: list[str] = []

    def bad(mask, text):
        for n in np.flatnonzero(mask):
            violations.append(text(n))

    bad((o < s.o_min) | (o > s.o_max), lambda n: f"user {n}: steps {o[n]} outside [{s.o_min}, {s.o_max}]")
    bad((c < s.c_min) | (c > s.c_max), lambda n: f"user {n}: cloud_steps {c[n]} outside [{s.c_min}, {s.c_max}]")
    bad(c > o, lambda n: f"user {n}: cloud_steps {c[n]} > steps {o[n]}")
    bad(vcs <= 0, lambda n: f"user {n}: cloud_sms {vcs[n]:g} must be > 0 (it runs {c[n]} cloud steps)")
    bad((q > 0) & (v <= 0), lambda n: f"user {n}: edge_sms {v[n]:g} must be > 0 (it runs {q[n]} edge steps)")
    bad(v < 0, lambda n: f"user {n}: edge_sms {v[n]:g} must be >= 0")
    bad(b <= 0, lambda n: f"user {n}: bandwidth_mhz {b[n]:g} must be > 0 (its video is sent)")
    bad(p <= 0, lambda n: f"user {n}: power_w {p[n]:g} must be > 0 (its video is sent)")
    bad(p > d.p_max_w * (1 + TOL), lambda n: f"user {n}: power_w {p[n]:g} > p_max_w {d.p_max_w:g}")
    if vcs.sum() > d.cloud.sms * (1 + TOL):
        violations.append(f"cloud SMs {vcs.sum():.6g} > {d.cloud.sms:g}")
    for k, e in enumerate(d.edges):
        on = m == k
        for used, cap, what in ((v[on].sum(), e.sms, "SMs"), (b[on].sum(), e.bandwidth_mhz, "bandwidth_mhz"),
                                (p[on].sum(), e.power_w, "power_w")):
            if used > cap * (1 + TOL):
                violations.append(f"edge {k} ({e.name}) {what} {used:.6g} > {cap:g}")

    w = d.weights
    gamma = d.snr_per_w_mhz[np.arange(N), m]
    utility = quality(d.alignment[np.arange(N), m], d.zeta[m], o)
    r = rate_mbps(b, p, gamma)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_cloud = np.where(vcs > 0, c * d.cloud.tflops_per_step / (np.maximum(vcs, 0) * d.tflops_per_sm), np.inf)
        t_edge = np.where(q == 0, 0.0, np.where(v > 0, q * d.edge_flops[m] / (np.maximum(v, 0) * d.tflops_per_sm),
                                                 np.inf))
        t_dl = np.where(r > 0, d.video_mbit / r, np.inf)
    t_fibre = d.fibre_s(np.arange(N), m, q <= 0)
    delay = t_cloud + t_fibre + t_edge + t_dl
    e_cloud = d.cloud.j_per_tflop * c * d.cloud.tflops_per_step
    e_edge = d.edge_kappa[m] * np.maximum(q, 0) * d.edge_flops[m]
    e_tx = np.where(np.isfinite(t_dl), np.maximum(p, 0) * t_dl, np.inf)
    energy = e_cloud + e_edge + e_tx
    per_user = w.utility * utility - w.delay_per_s * delay - w.energy_per_j * energy
    objective = float(per_user.sum()) if np.isfinite(per_user).all() else None

    def lst(a):
        return [float(x) if np.isfinite(x) else None for x in a]

    details = {
        "utility_total": float(utility.sum()), "delay_total_s": float(delay.sum()) if objective is not None else None,
        "energy_total_j": float(energy.sum()) if objective is not None else None,
        "per_user_objective": lst(per_user), "utility": lst(utility), "delay_s": lst(delay),
        "delay_cloud_s": lst(t_cloud), "delay_fibre_s": lst(t_fibre), "delay_edge_s": lst(t_edge),
        "delay_download_s": lst(t_dl), "energy_j": lst(energy), "energy_cloud_j": lst(e_cloud),
        "energy_edge_j": lst(e_edge), "energy_tx_j": lst(e_tx), "rate_mbps": lst(r),
    }
    return Evaluation(objective=objective, feasible=not violations, violations=violations, details=details)


def equal_split(instance: Instance, edge, steps, cloud_steps) -> Solution:
    """A feasible point for given discrete choices: every resource split equally among the users of a server.

    Used by the exact model to derive variable bounds and by the ``equal`` baseline.
    """
    d = instance.data
    m, o, c = (np.asarray(x, dtype=int) for x in (edge, steps, cloud_steps))
    N = d.n_users
    edge_users = np.bincount(m[o > c], minlength=len(d.edges))
    users = np.bincount(m, minlength=len(d.edges))
    bw = np.array([e.bandwidth_mhz for e in d.edges])
    pw = np.array([e.power_w for e in d.edges])
    sms = np.array([e.sms for e in d.edges])
    return Solution(
        edge=m.tolist(), steps=o.tolist(), cloud_steps=c.tolist(),
        cloud_sms=[d.cloud.sms / N] * N,
        edge_sms=np.where(o > c, sms[m] / np.maximum(edge_users[m], 1), 0.0).tolist(),
        bandwidth_mhz=(bw[m] / users[m]).tolist(),
        power_w=np.minimum(pw[m] / users[m], d.p_max_w).tolist(),
    )


# --- generator ------------------------------------------------------------------------------------
# Per-step FLOPs of a spatial/temporal diffusion transformer (seed 000, section 2.2): a spatial block
# attends within each of the n_f latent frames (sequence n_h*n_w), a temporal block across the n_f
# frames at each position. With N = n_f*n_h*n_w tokens, hidden size d and attention span l, one block
# costs 24*N*d^2 (QKV 6, output projection 2, 4x MLP 16; one multiply-add = 2 FLOPs) + 4*N*l*d
# (scores and weighted sum). Blocks alternate spatial/temporal; classifier-free guidance doubles it.
def dit_step_tflops(frames: int, height: int, width: int, hidden: int, depth: int, cfg: bool = True) -> float:
    """TFLOP of one denoising step of a spatial/temporal DiT on an (frames, height, width) token grid."""
    tokens = frames * height * width
    spatial = 24 * tokens * hidden**2 + 4 * tokens * (height * width) * hidden
    temporal = 24 * tokens * hidden**2 + 4 * tokens * frames * hidden
    total = (depth // 2) * spatial + (depth - depth // 2) * temporal
    return total * (2 if cfg else 1) / 1e12


# Open-Sora Plan v1.1.0: CausalVideoVAE 4x8x8, patch 2, so a 121-frame (5 s at 24 fps) 512x512 clip is
# (1 + 120/4) x 32 x 32 = 31 x 32 x 32 tokens. Full model Latte-XL/2 layout (d 1152, 28 blocks);
# edge models the lighter Latte configurations. (hidden, depth, quality factor, zeta)
_LATENT = (31, 32, 32)
_FULL = ("Open-Sora Plan v1.1.0 (Latte-XL/2, d=1152, 28 blocks)", 1152, 28)
_EDGE_MODELS = [
    ("Latte-L/2 (d=1024, 24 blocks)", 1024, 24, 1.00, 0.070),
    ("Latte-B/2 (d=768, 12 blocks)", 768, 12, 0.90, 0.060),
    ("Latte-S/2 (d=384, 12 blocks)", 384, 12, 0.80, 0.050),
]
# Edge GPUs: (name, SMs, J/TFLOP); cloud: 8 x A100 (108 SMs each).
_EDGE_GPUS = [("L40S", 142, 2.6), ("RTX4090", 128, 3.4), ("A100", 108, 3.7)]
_CLOUD = ("8xA100", 8 * 108, 3.7)
_TFLOPS_PER_SM = 1.0  # effective (A100: 312 TFLOP/s fp16 peak / 108 SMs at ~35 % utilisation)
_RAW_VIDEO_MBIT = 121 * 512 * 512 * 3 * 8 / 1e6  # 761 Mbit uncompressed
_NOISE_W_PER_HZ = 10 ** (-174 / 10) / 1e3  # -174 dBm/Hz
_WEIGHTS = {"utility": 10.0, "delay_per_s": 0.01, "energy_per_j": 1e-4}
# tradeoff preset: delay weight and quality growth that make the step choices bite (see instances/offload/README.md)
_TRADEOFF = {"utility": 40.0, "delay_per_s": 1.0, "zeta_scale": 0.5,
             "steps": {"o_min": 4, "o_max": 16, "c_min": 1, "c_max": 8}}
_DELAY_SENSITIVE = 0.1  # delay weight, /s, of the delay-sensitive preset (see instances/offload/README.md)


def generate(preset: str = "paper", size: int | None = None, seed: int = 0, edges: int | None = None,
             utility: float | None = None, delay_per_s: float | None = None,
             energy_per_j: float | None = None, fibre: Fibre = "crossing") -> Instance:
    """An instance with ``size`` users (paper, delay-sensitive: 15; small/tradeoff: 3) and ``edges`` edge servers
    (paper, delay-sensitive: 3, else 2).

    Users sit 50-500 m from every edge (3GPP path loss 128.1 + 37.6 log10 d[km], 8 dB shadowing);
    video sizes are the raw 761 Mbit clip compressed 1-4x; alignment is a per-user CLIP-like score in
    [0.55, 0.95] times the edge model's quality factor. Options ``utility``, ``delay_per_s``,
    ``energy_per_j`` override the weights; ``fibre`` sets what crosses the fibre (``data.fibre``).
    """
    small = preset in ("small", "tradeoff")
    trade = preset == "tradeoff"
    n = (3 if small else 15) if size is None else int(size)
    M = (2 if small else 3) if edges is None else int(edges)
    if n < 1:
        raise InputError("--size", "must be >= 1 (users)")
    if M < 1:
        raise InputError("edges", "must be >= 1")
    rng = np.random.default_rng(seed)
    weights = dict(_WEIGHTS)
    if trade:
        weights.update(utility=_TRADEOFF["utility"], delay_per_s=_TRADEOFF["delay_per_s"])
    if preset == "delay-sensitive":
        weights["delay_per_s"] = _DELAY_SENSITIVE
    for key, val in (("utility", utility), ("delay_per_s", delay_per_s), ("energy_per_j", energy_per_j)):
        if val is not None:
            weights[key] = float(val)
    frames, h, w = _LATENT
    cloud_f = dit_step_tflops(frames, h, w, _FULL[1], _FULL[2])
    edge_list, factors = [], []
    for k in range(M):
        mname, hidden, depth, factor, zeta = _EDGE_MODELS[k % 2 if M <= 2 else k % 3]
        gname, sms, kappa = _EDGE_GPUS[k % 3]
        edge_list.append({"name": f"es{k}-{gname}", "model": mname, "tflops_per_step": round(
            dit_step_tflops(frames, h, w, hidden, depth), 4), "sms": sms, "j_per_tflop": kappa,
            "fibre_mbps": 10_000.0, "bandwidth_mhz": 20.0, "power_w": 10.0,
            "quality_growth": zeta * _TRADEOFF["zeta_scale"] if trade else zeta})
        factors.append(factor)
    dist_km = rng.uniform(0.05, 0.5, size=(n, M))
    pl_db = 128.1 + 37.6 * np.log10(dist_km) + rng.normal(0.0, 8.0, size=(n, M))
    gain = 10 ** (-pl_db / 10)
    align = np.round(rng.uniform(0.55, 0.95, size=(n, 1)) * np.array(factors)[None, :]
                     * rng.uniform(0.95, 1.0, size=(n, M)), 4)
    video = np.round(_RAW_VIDEO_MBIT / rng.uniform(1.0, 4.0, size=n), 2)
    steps = _TRADEOFF["steps"] if trade else {"o_min": 6, "o_max": 16, "c_min": 1, "c_max": 8} if small else \
        {"o_min": 20, "o_max": 80, "c_min": 1, "c_max": 40}
    data = {
        "weights": weights, "steps": steps, "tflops_per_sm": _TFLOPS_PER_SM,
        "latent_mbit": round(2 * frames * h * w * _FULL[1] * 8 / 1e6, 3),  # fp16 latent, 2 bytes per value
        "noise_w_per_hz": _NOISE_W_PER_HZ, "p_max_w": 2.0,
        "cloud": {"name": _CLOUD[0], "model": _FULL[0], "tflops_per_step": round(cloud_f, 4), "sms": _CLOUD[1],
                  "j_per_tflop": _CLOUD[2]},
        "edges": edge_list, "video_mbit": video.tolist(), "gain": gain.tolist(), "alignment": align.tolist(),
    }
    name = f"{preset}-n{n}-m{M}-s{seed}"
    if fibre != "crossing":
        data["fibre"] = fibre
        name += f"-{fibre}"
    meta = {"generator": "edgeopt.problems.offload.generate", "preset": preset, "size": n, "seed": seed,
            "options": {"edges": M, **{k: v for k, v in (("utility", utility), ("delay_per_s", delay_per_s),
                                                         ("energy_per_j", energy_per_j)) if v is not None},
                        **({"fibre": fibre} if fibre != "crossing" else {})},
            "flops": {"formula": "per block 24*N*d^2 + 4*N*l*d, N = n_f*n_h*n_w, l = n_h*n_w (spatial) or n_f "
                                 "(temporal), blocks alternate, x2 classifier-free guidance",
                      "latent_tokens": list(_LATENT), "cloud_tflops_per_step": round(cloud_f, 4),
                      "edge_tflops_per_step": [e["tflops_per_step"] for e in edge_list]}}
    return Instance(name=name, meta=meta, data=Data.model_validate(data))


def instance_bytes(preset: str, size: int | None, edges: int | None = None, **_) -> float:
    """About the bytes generating and writing an instance takes: 1 KiB per user and 300 bytes per (user, edge),
    measured peak RSS (13.6 KiB per user of 100 edges at 10,000 users) with a margin."""
    return (15 if size is None else size) * (1024.0 + 300.0 * (edges or 3))

def small_instance(seed: int) -> Instance:
    """2-3 users on 2 edge servers with 6-16 steps: SCIP proves the optimum in about a second."""
    rng = np.random.default_rng(seed)
    return generate("small", size=int(rng.integers(2, 4)), seed=seed, edges=2)
