"""`backtest sweep` on the shipped BTCUSD daily files: the JSON contract, each trial equal to
`backtest run` of its params, the returns file, and errors that name the option."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from backtest_cli.main import main
from backtest_research.overfitting import probability_of_overfitting

REPO = Path(__file__).resolve().parents[2]
BTC_DIR = REPO / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d"
GRID = ["--grid", "fast=5:15:5", "--grid", "slow=10,30"]


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code = main([*args, "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_sweep_json_follows_the_contract_and_each_trial_equals_backtest_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    returns = tmp_path / "returns.csv"
    got = cli_json(capsys, "sweep", "--data", str(BTC_DIR), *GRID, "--fee", "0.001", "--returns",
                   str(returns), "--pbo-splits", "8", "--workers", "2")  # fmt: skip
    assert set(got) >= {"trials", "best", "overfitting"}
    assert set(got["overfitting"]) >= {"pbo", "deflated_sharpe", "psr", "trials"}
    assert got["counts"] == {"total": 6, "done": 4, "failed": 0, "skipped": 2}  # fast 10, 15 >= slow 10
    assert [t["params"] for t in got["trials"]][:2] == [{"fast": 5, "slow": 10}, {"fast": 5, "slow": 30}]
    for trial in got["trials"]:
        if trial["state"] != "SUCCESS":
            continue
        fast, slow = trial["params"]["fast"], trial["params"]["slow"]
        single = cli_json(capsys, "run", "--data", str(BTC_DIR), "--param", f"fast={fast}",
                          "--param", f"slow={slow}", "--fee", "0.001")  # fmt: skip
        assert trial["metrics"]["final_equity"] == pytest.approx(single["final_equity"], rel=1e-9)
    done = [t for t in got["trials"] if t["state"] == "SUCCESS"]
    assert got["best"]["metrics"]["sharpe"] == max(t["metrics"]["sharpe"] for t in done)
    with returns.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["time", *(str(t["id"]) for t in done)]
    assert rows[1][0] == "2014-11-29T00:00:00Z"  # the first return ends on the second bar
    assert len(rows) - 1 == done[0]["metrics"]["bars"] - 1
    matrix = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    recomputed = probability_of_overfitting(matrix, splits=8)  # anyone can recompute from the file
    assert recomputed is not None and recomputed.pbo == got["overfitting"]["pbo"]


def test_the_table_names_the_best_trial_and_the_statistics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--data", str(BTC_DIR), *GRID, "--no-progress", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Trials 6: 4 done, 0 failed, 2 skipped; objective sharpe max")
    assert "Overfitting over 4 trials: PBO" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "fast=5:1:1"], "fast=5:1:1: a range needs step > 0 and stop >= start"),
        (["--grid", "fast=5,10", "--objective", "sharp"], "objective 'sharp' is not a metric"),
        (["--grid", "fast=5,10", "--method", "random"], "random search needs --trials N"),
        (["--grid", "fast=5,10", "--pbo-splits", "3"], "option --pbo-splits: an even number >= 2, was 3"),
    ],
)
def test_bad_options_exit_2_naming_what_was_wrong(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["sweep", "--data", str(BTC_DIR), *args, "--no-progress"]) == 2
    assert message in capsys.readouterr().err
