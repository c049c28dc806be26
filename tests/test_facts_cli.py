"""`agora facts` end to end (CliRunner): the verdict of a simulated run beside the shipped
series, the verdict of a real CSV, machine output, and the mistakes a user can make."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.analysis.real import DATA_DIR
from agents.analysis.verdict import FACT_KEYS
from deploy.cli import app

pytest.importorskip("pyarrow.parquet")

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
PNGS = {"returns_hist.png", "acf.png", "kurtosis_scale.png"}

TINY = """
name = "tiny"
seed = 7
fundamental_interval_s = 0.1

[[symbols]]
symbol = "AGR"
reference_price = 10_000

[fundamental]
scale = 0.001
step_s = 0.1

[[populations]]
name = "fv"
strategy = "fair_value"
count = 6
[populations.params]
rate_per_s = 2.0
lifetime_ns = 3_000_000_000
"""


def invoke(*args: object, code: int = 0) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("facts")
    (root / "tiny.toml").write_text(TINY)
    invoke("simulate", root / "tiny.toml", "--until", "60", "--out", root / "run", "--no-progress")
    return root / "run"


def test_facts_prints_a_verdict_beside_the_sp500_and_writes_plots(run: Path) -> None:
    text = invoke("facts", run, "--bar", "1")
    for words in ("heavy tails", "tail index of the gains", "volatility clustering",
                  "aggregation", "facts passed", "7 of 7", "simulated", "sp500",
                  "k = 251"):  # fmt: skip
        assert words in text
    assert "PASS" in text and "FAIL" in text
    data = json.loads((run / "facts.json").read_text())
    sim, sp = data["series"]
    assert (sim["label"], sim["bar_s"], sp["label"], sp["bar"]) == ("simulated", 1.0, "sp500",
                                                                     "1 day")  # fmt: skip
    assert [f["key"] for f in sim["facts"]] == list(FACT_KEYS)
    assert sp["passed"] == 7 and sim["n"] > 30
    if HAVE_MPL:
        for name in PNGS:
            assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_facts_json_is_the_verdict_and_check_sets_the_exit_status(
    run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "f"
    text = invoke("facts", run / "trades.parquet", "--real", "none", "--json", "--no-plots",
                  "--out", out, "--check", code=1)  # fmt: skip  # a minute of 6 agents fails
    data = json.loads(text)
    assert len(data["series"]) == 1 and data["series"][0]["passed"] < 7
    assert json.loads((out / "facts.json").read_text()) == data
    assert not any((out / n).exists() for n in PNGS)


def test_a_real_csv_alone_passes_with_check(tmp_path: Path) -> None:
    csv = tmp_path / "index.csv"
    csv.write_text((DATA_DIR / "sp500.csv").read_text())
    text = invoke("facts", csv, "--real", "nasdaq", "--real-csv", DATA_DIR / "wti.csv",
                  "--check", "--json", "--no-plots")  # fmt: skip
    labels = [(s["label"], s["passed"]) for s in json.loads(text)["series"]]
    assert labels == [("index", 7), ("nasdaq", 7), ("wti", 7)]


def test_facts_mistakes_are_one_line_and_status_2(run: Path, tmp_path: Path) -> None:
    for args in (["--real", "gold"], ["--bar", "0"]):
        result = CliRunner().invoke(app, ["facts", str(run), *args])
        assert result.exit_code == 2 and "Traceback" not in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("day,price\n2020-01-01,1\n")
    result = CliRunner().invoke(app, ["facts", str(bad)])
    assert result.exit_code == 2 and "date and close" in result.output
    result = CliRunner().invoke(app, ["facts", str(tmp_path)])  # a dir without trades
    assert result.exit_code == 2 and "no trades file" in result.output
