"""The README's Python section is a promise: pasted at the repository root, it runs."""
from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def test_readme_python_section_runs_at_the_repository_root():
    """At the root the local edgeopt/ folder shadows the installed package; the snippet must still work."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "optimal" in done.stdout
