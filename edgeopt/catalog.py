"""What ``edgeopt list`` prints, kept in the user's cache: answering it from the registry imports every problem's
modules (SciPy, Pyomo: seconds), and this module imports nothing of edgeopt until it must."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path


def catalog(refresh: bool = False) -> dict:
    """What ``edgeopt list`` prints: problems (sense, presets, methods with kind, summary and description),
    importers and the solvers found here.

    Building it imports every problem's modules (SciPy, Pyomo: seconds), so it is kept in the user's cache
    directory (``$XDG_CACHE_HOME/edgeopt``, else ``~/.cache/edgeopt``) under a fingerprint of what it depends on:
    edgeopt's source files (path, size, modification time), the Python executable, and the modification times of
    the site-packages directories (an install or uninstall changes them). ``refresh``: rebuild it whatever the
    cache holds (a solver licence that came or went changes no file).
    """
    root = Path(__file__).parent
    parts = [os.path.realpath(sys.executable), sys.version]
    for base, _, files in sorted(os.walk(root, followlinks=True)):
        for name in sorted(files):
            if name.endswith(".py"):
                st = os.stat(os.path.join(base, name))
                parts.append(f"{os.path.relpath(os.path.join(base, name), root)}:{st.st_size}:{st.st_mtime_ns}")
    parts += [f"{p}:{os.stat(p).st_mtime_ns}" for p in sys.path if p.endswith("-packages") and os.path.isdir(p)]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeopt" / f"list-{key}.json"
    if not refresh:
        try:
            return json.loads(cache.read_text())
        except (OSError, ValueError):
            pass
    from edgeopt.registry import listing
    from edgeopt.solvers import available_solvers

    doc = listing(available_solvers())
    try:  # atomically: a concurrent reader sees the old file or the new one
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, cache)
    except OSError:  # a read-only home: no cache, the same answer
        pass
    return doc
