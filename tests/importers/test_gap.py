"""OR-Library GAP files -> qllms instances: the shipped conversion reproduced, a bad file exits 2."""
from __future__ import annotations

from pathlib import Path

from conftest import INSTANCES
from edgeopt import io

DATA = Path(__file__).parents[1] / "data" / "qllms"
GAP = INSTANCES / "qllms" / "gap"


def test_gap_importer_through_the_cli(cli, tmp_path):
    out = tmp_path / "c0515_1.json"
    code, _, err = cli("import", "gap", DATA / "c0515_1.txt", "-o", out)
    assert code == 0, err
    mine, ship = io.load(out), io.load(GAP / "c0515_1.json.gz")
    assert mine.data.model_dump(mode="json") == ship.data.model_dump(mode="json")
    d = mine.data
    assert d.shape == (15, 5, 1) and d.cost[0, 0, 0] == 17 and d.lat[0, 0, 0] == 8 and d.cap[0] == 36
    assert (d.objective, d.memory, d.slo) == ("gpu-seconds", "per-task", "latency")  # the GAP's reading, set


def test_gap_importer_rejects_a_truncated_file(cli, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text((DATA / "c0515_1.txt").read_text().rsplit(maxsplit=1)[0])
    code, _, err = cli("import", "gap", bad, "-o", tmp_path / "out.json")
    assert code == 2 and "2 + 2*m*n + m" in err and not (tmp_path / "out.json").exists()
