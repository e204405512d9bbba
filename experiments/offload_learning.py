"""TS-MITO over time (seed 000 §3): the learned stage one (MAPPO) against IPPO, VDN and QMIX, the coordinate
search ``ts-mito``, Equal / Proportional stage two, and the LVM-strength sweep, scored by the referee with the
per-slot optimum or bound.

    python experiments/offload_learning.py convergence  # the four training curves, 700 episodes (+ ts-mito, random)
    python experiments/offload_learning.py compare      # 100 slots at the paper scale, each method, bound per slot
    python experiments/offload_learning.py compare qmix # the same for the methods named (merged into the numbers)
    python experiments/offload_learning.py splits       # TS-MITO's stage one with the KKT, Equal, Proportional splits
    python experiments/offload_learning.py lvm          # every edge the best / medium / worst model
    python experiments/offload_learning.py plot         # the figures again from runs/offload-learning/*.json

Writes PNGs to experiments/figures/offload-*.png and the numbers to runs/offload-learning/*.json. The learned
methods run the shipped policies (policies/offload/<algorithm>-paper.npz, trained by the commands in their
headers); every evaluation run is simulation seed 0, which no training episode uses (their seeds are >= 1,000,000).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgeopt import registry
from edgeopt.learn.train import ema, train_seed
from edgeopt.problems.offload import Solution
from edgeopt.simulation import simulate
from edgeopt.systems.offload import Simulation, make_process

ROOT = Path(__file__).resolve().parents[1]
FIGURES, RUNS = ROOT / "experiments" / "figures", ROOT / "runs" / "offload-learning"
ALGORITHMS = ["mappo", "ippo", "vdn", "qmix"]
METHOD = {"mappo": "ts-mito-mappo", "ippo": "ippo", "vdn": "vdn", "qmix": "qmix"}
COLORS = {"mappo": "C3", "ts-mito-mappo": "C3", "ippo": "C1", "vdn": "C2", "qmix": "C0", "ts-mito": "C4",
          "random": "C7", "bound": "k"}
SLOTS = 10  # decided slots per training episode (make_process's default)


def _save(fig, name: str) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"{name}.png", dpi=130)
    print("wrote", FIGURES / f"{name}.png")


def _dump(name: str, doc: dict) -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / f"{name}.json").write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc, indent=1))


def _load(name: str) -> dict:
    return json.loads((RUNS / f"{name}.json").read_text())


def _episode(seed: int, method: str) -> float:
    """A training episode (``SLOTS`` decided slots of the simulation drawn with ``seed``) played by a method: the
    referee's objective summed over its slots (what a learner's episode reward is)."""
    sim, prob = Simulation(seed=seed), registry.problem("offload")
    t = decided = 0
    total = 0.0
    while decided < SLOTS:
        inst = sim.instance(t)
        if inst is not None:
            r = prob.method(method).run(inst, seed=t)
            sol = Solution.model_validate(r.solution) if r.feasible else sim.fallback(inst)
            total += r.objective if r.feasible else 0.0
            decided += 1
        else:
            sol = None
        sim.advance(t, inst, sol)
        t += 1
    return total


def _random_episode(seed: int) -> float:
    proc, draw = make_process("paper")
    proc.reset(draw(seed))
    rng, total = np.random.default_rng(seed), 0.0
    while not proc.done:
        masks = proc.observe_all()["action_mask"]
        total += sum(proc.step({i: int(rng.choice(np.flatnonzero(masks[i]))) for i in proc.live}).values())
    return total


def episodes_to(y: np.ndarray, level: float) -> int | None:
    """The first episode from which the EMA (0.95) of the reward stays at or above ``level``."""
    e = ema(y)
    below = np.flatnonzero(e < level)
    if len(below) == 0:
        return 1
    return None if below[-1] + 1 >= len(y) else int(below[-1]) + 2


def convergence(every: int = 10) -> None:
    """The training curves, with the episodes to reach 95 % of the final reward (the paper's measure) and to 95 % of
    the way from the first 50 episodes' mean to the final one; ts-mito and random on every ``every``-th episode."""
    import pyarrow.parquet as pq

    curves = {a: pq.read_table(ROOT / "policies" / "offload" / f"{a}-paper.curve.parquet").to_pylist()
              for a in ALGORITHMS}
    episodes = len(curves["mappo"])
    refs = {"episode": [], "ts-mito": [], "random": []}
    for ep in range(every - 1, episodes, every):
        seed = train_seed(0, ep)
        refs["episode"].append(ep + 1)
        refs["ts-mito"].append(_episode(seed, "ts-mito"))
        refs["random"].append(_random_episode(seed))
        if (ep + 1) % 100 == 0:
            print("episode", ep + 1, flush=True)
    out = {"episodes": episodes, "references": refs, "algorithms": {}}
    for a, rows in curves.items():
        y = np.array([r["reward"] for r in rows])
        final, first = float(np.mean(y[-50:])), float(np.mean(y[:50]))
        out["algorithms"][a] = {"reward": y.tolist(), "final_last50": final, "first50": first,
                                "episodes_to_95pct_of_final": episodes_to(y, 0.95 * final),
                                "episodes_to_95pct_of_gain": episodes_to(y, first + 0.95 * (final - first)),
                                "train_wall_s": rows[-1]["wall_s"]}
    _dump("convergence", out)
    plot_convergence(out)


def plot_convergence(out: dict | None = None) -> None:
    from matplotlib.figure import Figure

    out = out or _load("convergence")
    fig = Figure(figsize=(8, 4.4), layout="constrained")
    ax = fig.subplots()
    for a, c in out["algorithms"].items():
        y = np.array(c["reward"])
        x = np.arange(1, len(y) + 1)
        ax.plot(x, y, color=COLORS[a], alpha=0.12, linewidth=0.6)
        ax.plot(x, ema(y), color=COLORS[a], linewidth=1.4,
                label=f"{a} (95 % of final from {c['episodes_to_95pct_of_final'] or '—'}, "
                      f"of the gain from {c['episodes_to_95pct_of_gain'] or '—'})")
    refs = out["references"]
    smooth = [ema(np.array(c["reward"])) for c in out["algorithms"].values()]
    for m in ("ts-mito", "random"):
        smooth.append(ema(np.array(refs[m]), 0.8))
        ax.plot(refs["episode"], smooth[-1], "--", color=COLORS[m], label=f"{m} on every 10th episode (EMA 0.8)")
    lo, hi = min(float(y.min()) for y in smooth), max(float(y.max()) for y in smooth)
    ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))  # single episodes reach -3,700: the raw lines are clipped
    ax.set_xlabel("training episode (10 slots of a fresh simulated run, 15 users)")
    ax.set_ylabel("team reward per episode = referee's objective summed")
    ax.legend(fontsize="small")
    fig.suptitle("TS-MITO's stage one: convergence over 700 episodes (EMA 0.95, raw shaded)")
    _save(fig, "offload-convergence")


def _run(method: str, slots: int, reference, **options) -> dict:
    run = simulate("offload", method, intervals=slots, seed=0, reference=reference, **options)
    decided = [v for v in run.column("decision", "objective") if v is not None]
    out = {**run.summary, "slots_decided": len(decided), "objective_per_slot": run.column("decision", "objective")}
    if reference:
        out["ref_per_slot"] = run.column("reference", "ref_value")
        out["ref_kind"] = sorted(set(v for v in run.column("reference", "reference") if v))
    out["decision_wall_s_mean"] = float(np.mean([v for v in run.column("decision", "wall_s") if v is not None]))
    print(method, options, {k: v for k, v in out.items() if not k.endswith("per_slot")}, flush=True)
    return out


def compare(*names: str, slots: int = 100) -> None:
    """Each learned method and ``ts-mito`` (or the ``names`` given) at the paper scale (15 users, 3 edges, 1 cloud),
    with the per-slot reference (the Lagrangian bound: slots of 15 users are too large for the proven optimum)."""
    out = _load("compare") if (RUNS / "compare.json").is_file() else {}
    for m in names or [METHOD[a] for a in ALGORITHMS] + ["ts-mito"]:
        out[m] = _run(m, slots, "auto")
        _dump("compare", out)
    if all(METHOD[a] in out for a in ALGORITHMS):
        plot_compare(out)


def plot_compare(out: dict | None = None) -> None:
    from matplotlib.figure import Figure

    out = out or _load("compare")
    base = out["qmix"]
    metrics = (("utility", "utility U (sum)", 1), ("delay_mean_s", "mean delay", -1), ("energy_j", "energy (sum)", -1),
               ("objective", "objective (sum)", 1))
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    ax, ts = fig.subplots(1, 2, width_ratios=[1, 1.3])
    names = list(out)
    width = 0.8 / len(names)
    for k, m in enumerate(names):
        vals = [100 * (out[m][key] - base[key]) / abs(base[key]) for key, _, _ in metrics]
        ax.bar(np.arange(len(metrics)) + k * width, vals, width, color=COLORS[m], label=m)
    ax.axhline(0, color="k", linewidth=0.6)
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, [label for _, label, _ in metrics])
    ax.set_ylabel("change against QMIX, %")
    ax.legend(fontsize="small")
    for m in names:
        y = [np.nan if v is None else v for v in out[m]["objective_per_slot"]]
        ts.plot(np.arange(len(y)), y, color=COLORS[m], linewidth=0.9, label=m)
    for m in ("ts-mito-mappo",):
        r = [np.nan if v is None else v for v in out[m]["ref_per_slot"]]
        ts.plot(np.arange(len(r)), r, ":", color="k", linewidth=0.9, label="bound (lagrange) on MAPPO's slots")
    ts.set_xlabel("slot (30 s)")
    ts.set_ylabel("weighted objective of the slot (referee)")
    ts.legend(fontsize="small")
    fig.suptitle("TS-MITO against the paper's baselines: 100 slots, 15 users, 3 edges, simulation seed 0")
    _save(fig, "offload-compare")


def splits(slots: int = 100) -> None:
    """TS-MITO's stage one (MAPPO) with each stage two; the coordinate search with each, for comparison."""
    out = {}
    for split in ("kkt", "equal", "proportional"):
        out[f"ts-mito-mappo/{split}"] = _run("ts-mito-mappo", slots, None, split=split)
    for m in ("ts-mito", "equal", "proportional"):
        out[m] = _run(m, slots, None)
    _dump("splits", out)
    plot_splits(out)


def plot_splits(out: dict | None = None) -> None:
    from matplotlib.figure import Figure

    out = out or _load("splits")
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    names = list(out)
    vals = [out[m]["objective"] for m in names]
    ax.bar(range(len(names)), vals, color=["C3", "C3", "C3", "C4", "C4", "C4"][:len(names)])
    for k, v in enumerate(vals):
        ax.text(k, v, f"{v:.0f}", ha="center", va="bottom", fontsize="small")
    ax.set_xticks(range(len(names)), names, rotation=15, fontsize="small")
    ax.set_ylabel("objective over 100 slots (referee)")
    lo = min(vals)
    ax.set_ylim(lo - 0.1 * abs(lo), max(vals) + 0.05 * abs(max(vals)))
    fig.suptitle("Stage two: KKT (TS-MITO) against Equal and Proportional splits")
    _save(fig, "offload-splits")


def lvm(slots: int = 100) -> None:
    """Every edge the best (Latte-L/2), medium (B/2) or worst (S/2) model, and the presets' mix."""
    out = {}
    for model in ("best", "mixed", "medium", "worst"):
        for m in ("ts-mito-mappo", "ts-mito"):
            out[f"{m}/{model}"] = _run(m, slots, None, lvm=model)
    _dump("lvm", out)
    plot_lvm(out)


def plot_lvm(out: dict | None = None) -> None:
    from matplotlib.figure import Figure

    out = out or _load("lvm")
    models = ("best", "mixed", "medium", "worst")
    for cell in out.values():
        cell["utility_per_request"] = cell["utility"] / cell["served"]
    fig = Figure(figsize=(14, 4), layout="constrained")
    axes = fig.subplots(1, 4)
    for ax, (key, label) in zip(axes, (("utility_per_request", "utility per served request"),
                                       ("served", "requests served (of 1,500)"), ("delay_mean_s", "mean delay, s"),
                                       ("objective", "objective (sum)"))):
        for k, m in enumerate(("ts-mito-mappo", "ts-mito")):
            ax.bar(np.arange(4) + 0.4 * k, [out[f"{m}/{x}"][key] for x in models], 0.4, color=COLORS[m], label=m)
        ax.set_xticks(np.arange(4) + 0.2, models)
        ax.set_title(label, fontsize="medium")
    axes[0].legend(fontsize="small")
    fig.suptitle("LVM strength: every edge's model best (Latte-L/2) to worst (S/2); 100 slots, 15 users")
    _save(fig, "offload-lvm")


def plot() -> None:
    for name, fn in (("convergence", plot_convergence), ("compare", plot_compare), ("splits", plot_splits),
                     ("lvm", plot_lvm)):
        if (RUNS / f"{name}.json").is_file():
            fn()


if __name__ == "__main__":
    parts = {"convergence": convergence, "compare": compare, "splits": splits, "lvm": lvm, "plot": plot}
    args = sys.argv[1:] or ["convergence", "compare", "splits", "lvm"]
    calls = []
    for a in args:  # a part, or a method name for the part before it
        if a in parts:
            calls.append((parts[a], []))
        else:
            calls[-1][1].append(a)
    for fn, names in calls:
        fn(*names)
