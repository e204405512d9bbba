"""Liao et al.'s learning figures, which experiment files cannot express: training curves (fig. 4), the seed's
reward of every method against W and T_max (figs. 5 and 7), and UCB-COMA over time under edge failures (fig. 9).

    python experiments/dagsched_learning.py fig4      # reward over the 700 training episodes, six schemes + optimum
    python experiments/dagsched_learning.py fig5-7    # mean reward against W and T_max, 10 seeds per point
    python experiments/dagsched_learning.py fig9      # failure probability 0 / 0.1 / 0.2 over 100 intervals
    python experiments/dagsched_learning.py plot5-7   # figs. 5 and 7 again from runs/dagsched-learning/fig5-7.json
    python experiments/dagsched_learning.py plot9     # fig. 9 again from runs/dagsched-learning/fig9.json

Writes PNGs to experiments/figures/ and the numbers to runs/dagsched-learning/*.json. The learned methods are
the shipped policies (policies/dagsched/<method>-<preset>.npz, trained by the commands in their headers); fig. 4
reads their training curves (<method>-<preset>.curve.parquet) and runs CS-UCB, Random, `list` and the optimum
(`cpsat`, every 10th episode) on the very instances the learners trained on (same generator seeds).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgeopt import registry
from edgeopt.learn.train import ema, train_seed
from edgeopt.problems.dagsched import Solution, generate
from edgeopt.systems.dagsched import paper_reward

ROOT = Path(__file__).resolve().parents[1]
FIGURES, RUNS = ROOT / "experiments" / "figures", ROOT / "runs" / "dagsched-learning"
LEARNED = ["ucb-coma", "coma", "mappo", "maddpg"]
BASELINES = ["cs-ucb", "random", "list"]
PRESETS = ["paper", "edge-share"]
COLORS = {"ucb-coma": "C3", "coma": "C1", "mappo": "C2", "maddpg": "C4", "cs-ucb": "C0", "random": "C7",
          "list": "C5", "optimum": "k"}


def _solve(name: str, inst, seed: int = 0, time_limit: float = 60.0):
    r = registry.problem("dagsched").method(name).run(inst, seed=seed, time_limit=time_limit)
    sol = Solution.model_validate(r.solution)
    return r, paper_reward(inst, sol)


def _save(fig, name: str) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"{name}.png", dpi=130)
    print("wrote", FIGURES / f"{name}.png")


def fig4() -> None:
    import pyarrow.parquet as pq
    from matplotlib.figure import Figure

    out = {}
    for preset in PRESETS:
        curves = {m: pq.read_table(ROOT / "policies" / "dagsched" / f"{m}-{preset}.curve.parquet").to_pylist()
                  for m in LEARNED}
        episodes = len(curves["ucb-coma"])
        seed = 0
        rows = {m: {"reward": [], "objective": []} for m in BASELINES}
        opt = {"episode": [], "reward": [], "objective": []}
        for ep in range(episodes):
            inst = generate(preset, 5, seed=train_seed(seed, ep))
            for m in BASELINES:
                r, rew = _solve(m, inst, seed=ep)
                rows[m]["reward"].append(rew)
                rows[m]["objective"].append(r.objective)
            if ep % 10 == 9:
                r, rew = _solve("cpsat", inst, time_limit=60)
                opt["episode"].append(ep + 1)
                opt["reward"].append(rew if r.status == "optimal" else None)
                opt["objective"].append(r.objective if r.status == "optimal" else None)
            if ep % 50 == 49:
                print(preset, ep + 1, flush=True)
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        axes = fig.subplots(1, 2)
        summary = {}
        for m in LEARNED + BASELINES:
            for ax, key in zip(axes, ("reward", "objective")):
                y = np.array([r[key] for r in curves[m]] if m in curves else rows[m][key], dtype=float)
                x = np.arange(1, len(y) + 1)
                ax.plot(x, y, color=COLORS[m], alpha=0.15, linewidth=0.6)
                ax.plot(x, ema(y), color=COLORS[m], label=m, linewidth=1.4)
            rew = [r["reward"] for r in curves[m]] if m in curves else rows[m]["reward"]
            obj = [r["objective"] for r in curves[m]] if m in curves else rows[m]["objective"]
            summary[m] = {"reward_last100": float(np.mean(rew[-100:])), "objective_last100": float(np.mean(obj[-100:]))}
        for ax, key in zip(axes, ("reward", "objective")):
            pts = [(e, v) for e, v in zip(opt["episode"], opt[key]) if v is not None]
            ax.plot([e for e, _ in pts], [v for _, v in pts], "k.", markersize=3, label="optimum (cpsat, every 10th)")
            ax.set_xlabel("training episode")
        axes[0].set_ylabel("seed's reward per episode (team sum)")
        axes[1].set_ylabel("weighted sum (referee), lower is better")
        axes[1].set_yscale("log")
        axes[0].legend(fontsize="small", ncol=2)
        fig.suptitle(f"Liao et al. fig. 4 ({preset}, W = 6 MHz, T_max = 3 s, 5 jobs): EMA 0.95, raw shaded")
        _save(fig, f"dagsched-fig4-{preset}")
        last = [k for k, e in enumerate(opt["episode"]) if e > episodes - 100 and opt["objective"][k] is not None]
        summary["optimum"] = {"reward_last100": float(np.mean([opt["reward"][k] for k in last])),
                              "objective_last100": float(np.mean([opt["objective"][k] for k in last]))}
        out[preset] = summary
    _dump("fig4", out)


def _dump(name: str, doc: dict) -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / f"{name}.json").write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc, indent=1))


def fig5_7(seeds: int = 10) -> None:
    """Mean reward (and objective, gap) of every method against W (T_max = 3) and T_max (W = 6)."""
    methods = LEARNED + BASELINES + ["cpsat"]
    points = [("bandwidth_mhz", w, {"bandwidth_mhz": w, "t_max": 3.0}) for w in (5.0, 5.5, 6.0)]
    points += [("t_max", t, {"bandwidth_mhz": 6.0, "t_max": t}) for t in (2.5, 2.8, 3.0)]
    out: dict = {}
    for preset in PRESETS:
        for axis, value, opts in points:
            cell = {m: {"reward": [], "objective": [], "gap": []} for m in methods}
            for s in range(seeds):
                inst = generate(preset, 5, seed=s, **opts)
                res = {m: _solve(m, inst, seed=s) for m in methods}
                best = res["cpsat"][0]
                for m, (r, rew) in res.items():
                    cell[m]["reward"].append(rew)
                    cell[m]["objective"].append(r.objective)
                    if best.status == "optimal":
                        cell[m]["gap"].append((r.objective - best.objective) / best.objective)
            out.setdefault(preset, {}).setdefault(axis, {})[str(value)] = {
                m: {k: float(np.mean(v)) if v else None for k, v in c.items()} for m, c in cell.items()}
            print(preset, axis, value, flush=True)
    _dump("fig5-7", out)
    plot5_7(out)


MARKERS = {"ucb-coma": "o", "coma": "s", "mappo": "^", "maddpg": "v", "cs-ucb": "D", "random": "x", "list": "+",
           "cpsat": "*"}


def plot5_7(out: dict | None = None) -> None:
    """Figs. 5 and 7 from the numbers (``runs/dagsched-learning/fig5-7.json`` when not given)."""
    from matplotlib.figure import Figure

    out = out or json.loads((RUNS / "fig5-7.json").read_text())
    methods = LEARNED + BASELINES + ["cpsat"]
    for preset in out:
        for axis, fig_no in (("bandwidth_mhz", 5), ("t_max", 7)):
            fig = Figure(figsize=(11, 4.4), layout="constrained")
            axes = fig.subplots(1, 2)
            xs = sorted(float(x) for x in out[preset][axis])
            for m in methods:
                label = "optimum (cpsat)" if m == "cpsat" else m
                color = COLORS["optimum" if m == "cpsat" else m]
                style = "--" if m in LEARNED else "-"
                for ax, key in zip(axes, ("reward", "gap")):
                    if key == "gap" and m == "cpsat":
                        continue
                    ys = [out[preset][axis][str(x)][m][key] for x in xs]
                    ys = [100 * y for y in ys] if key == "gap" else ys
                    ax.plot(xs, ys, style, marker=MARKERS[m], color=color, label=label, markersize=7,
                            fillstyle="none")
            axes[0].set_ylabel("seed's reward of the schedule (mean of 10)")
            axes[1].set_ylabel("gap to the proven optimum, % (mean of 10; symlog)")
            axes[1].set_yscale("symlog", linthresh=1.0)
            for ax in axes:
                ax.set_xlabel("W, MHz" if axis == "bandwidth_mhz" else "T_max, s")
                ax.set_xticks(xs)
            axes[1].legend(*axes[0].get_legend_handles_labels(), fontsize="small", loc="upper left",
                           bbox_to_anchor=(1.0, 1.0))
            fig.suptitle(f"Liao et al. fig. {fig_no} ({preset}): against "
                         + ("W (T_max = 3 s)" if axis == "bandwidth_mhz" else "T_max (W = 6 MHz)")
                         + "; learned methods dashed, overlapping markers hide each other")
            _save(fig, f"dagsched-fig{fig_no}-{preset}")


def fig9(intervals: int = 100) -> None:
    """UCB-COMA (and list) through the simulation at failure probability 0, 0.1 and 0.2, cpsat per interval."""
    from edgeopt.simulation import simulate

    out = {}
    for failure in FAILURES:
        for method in ("ucb-coma", "list"):
            run = simulate("dagsched", method, intervals=intervals, seed=0, failure=failure, reference="cpsat",
                           time_limit=2)
            obj = [v for v in run.column("decision", "objective") if v is not None]
            gap = [v for v in run.column("reference", "gap") if v is not None]
            status = run.column("reference", "ref_status")
            out[f"{method}@{failure}"] = {**run.summary, "mean_gap": float(np.mean(gap)),
                                          "mean_objective": float(np.mean(obj)),
                                          "reference_proven": sum(x == "optimal" for x in status),
                                          "decisions": len(status)}
            print(method, failure, out[f"{method}@{failure}"], flush=True)
    _dump("fig9", out)
    plot9(out)


FAILURES = (0.0, 0.1, 0.2)


def plot9(out: dict | None = None) -> None:
    """Fig. 9 as bars per failure probability: the weighted sum per interval and its gap, drops, job latency."""
    from matplotlib.figure import Figure

    out = out or json.loads((RUNS / "fig9.json").read_text())
    panels = (("mean_objective", "weighted sum per interval (referee, mean)"),
              ("mean_gap", "gap to cpsat per interval (2 s, from list)"),
              ("dropped", "jobs dropped (edge failures), of ~490"),
              ("interval_mean_latency_s", "mean job latency from arrival, s"))
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels))
    x = np.arange(len(FAILURES))
    for ax, (key, title) in zip(axes, panels):
        for k, (method, color) in enumerate((("ucb-coma", COLORS["ucb-coma"]), ("list", COLORS["list"]))):
            ys = [out[f"{method}@{f}"][key] for f in FAILURES]
            ax.bar(x + (k - 0.5) * 0.38, ys, width=0.38, color=color, label=method)
        ax.set_xticks(x, [str(f) for f in FAILURES])
        ax.set_xlabel("edge failure probability per interval")
        ax.set_title(title, fontsize="medium")
    axes[2].legend(fontsize="small", loc="upper left")
    fig.suptitle("Liao et al. fig. 9: the paper policy of UCB-COMA and list through 100 simulated intervals "
                 "(5 jobs / 0.5 s, seed 0)")
    _save(fig, "dagsched-fig9")


if __name__ == "__main__":
    {"fig4": fig4, "fig5-7": fig5_7, "plot5-7": plot5_7, "fig9": fig9, "plot9": plot9}[sys.argv[1]]()
