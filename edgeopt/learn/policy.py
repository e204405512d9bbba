"""Policy files: a trained actor's parameters and a JSON header in one ``.npz``, loaded without pickle.

The header (``__header__``, UTF-8 JSON as a uint8 array) names the problem, the algorithm, the observation
layout and its version, the network sizes, the training preset, options and reward, the exact command and
seed that trained it, the episodes, and the edgeopt version. ``load`` checks all of it: a file for another
problem, another layout version or with parameters that do not fit its header is an InputError (exit 2).
The same format holds training checkpoints (``kind = "checkpoint"``: every network, the optimizer state and the
training state), so a run resumes from one.
"""
from __future__ import annotations

import io as _io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeopt import io, registry
from edgeopt.learn import nets
from edgeopt.model import InputError

FORMAT = "edgeopt-policy"
FORMAT_VERSION = 1
HEADER = "__header__"


@dataclass
class Policy:
    header: dict
    arrays: dict[str, np.ndarray]  # flat "actor/gcn/g1/w" -> array

    @property
    def actor(self) -> dict:
        return nets.unflatten({k[len("actor/"):]: v for k, v in self.arrays.items() if k.startswith("actor/")})

    @property
    def layout(self):
        """The observation layout the policy was trained on (its problem's ``Layout``)."""
        return registry.decisions(self.header["problem"], "header.problem").Layout.from_json(self.header["layout"])

    def tree(self, name: str) -> dict:
        return nets.unflatten({k[len(name) + 1:]: v for k, v in self.arrays.items() if k.startswith(name + "/")})


def dump(header: dict, trees: dict[str, dict]) -> bytes:
    """The file's bytes: ``trees`` (name -> nested dict of arrays) and the header."""
    arrays = {f"{name}/{k}": v for name, tree in trees.items() for k, v in nets.flatten(tree).items()}
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, **header}
    arrays[HEADER] = np.frombuffer(json.dumps(doc, sort_keys=True).encode(), dtype=np.uint8)
    buf = _io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def save(path: str | Path, header: dict, trees: dict[str, dict]) -> None:
    """Write atomically (a checkpoint interrupted half-way never replaces the last good one)."""
    io.write_bytes(dump(header, trees), path)


def load(path: str | Path, problem: str | None = None, kind: str = "policy") -> Policy:
    """Read and check a policy (or checkpoint) file; InputError naming the file and the rule otherwise."""
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "does not exist (expected a policy file, .npz)")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(str(p), f"is not a policy file (.npz without pickles): {exc}") from None
    if HEADER not in arrays:
        raise InputError(str(p), "has no header: not an edgeopt policy file")
    try:
        header = json.loads(arrays.pop(HEADER).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: header", f"must be JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"{p}: header.format", f"must be {FORMAT!r}")
    if header.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{p}: header.format_version", f"must be {FORMAT_VERSION}, got {header.get('format_version')!r}")
    if header.get("kind") != kind:
        raise InputError(f"{p}: header.kind", f"must be {kind!r} here, got {header.get('kind')!r}")
    if problem is not None and header.get("problem") != problem:
        raise InputError(f"{p}: header.problem", f"must be {problem!r}: this policy was trained for "
                                                 f"{header.get('problem')!r}")
    pol = Policy(header, arrays)
    _check_layout(p, pol, "actor/" if kind == "policy" else "learner/actor/")
    return pol


def _check_layout(p: Path, pol: Policy, prefix: str) -> None:
    """The header's layout must be one this edgeopt reads, and the actor's shapes must match it."""
    module = registry.decisions(pol.header.get("problem"), f"{p}: header.problem")
    try:
        layout = pol.layout
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError(f"{p}: header.layout", "must give tasks, servers, modalities, cloud and version") from None
    if layout.version != module.LAYOUT_VERSION:
        raise InputError(f"{p}: header.layout.version", f"must be {module.LAYOUT_VERSION} (this edgeopt's observation "
                                                        f"layout), got {layout.version}")
    net = pol.header.get("network", {})
    try:
        want = nets.flatten(nets.actor_init(np.random.default_rng(0), layout, int(net["hidden"]), int(net["embed"])))
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{p}: header.network", "must give hidden and embed sizes") from None
    for k, v in want.items():
        got = pol.arrays.get(prefix + k)
        if got is None or got.shape != v.shape or not np.issubdtype(got.dtype, np.floating):
            raise InputError(f"{p}: {prefix}{k}", f"must be a float array of shape {v.shape} for the header's layout, "
                                                  f"got {None if got is None else got.shape}")
        if not np.isfinite(got).all():
            raise InputError(f"{p}: {prefix}{k}", "must be finite")
