"""The leaderboard regenerates .md/.csv/.png from result rows; bad results files never replace existing pages."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from model_zoo.apps import leaderboard
from model_zoo.apps.leaderboard import PUBLISHED, main, synthetic_dataset_ids, write_leaderboard
from model_zoo.apps.results import append_result
from model_zoo.apps.tuner.report import SweepReport
from model_zoo.errors import DataError

SYNTH = dict(model="DIN", dataset_id="MicroLens_synth_small", embedding_variant="V3", seed=1, oracle_valid_AUC=0.875,
             oracle_test_AUC=0.872, num_params=123456, device="cpu", valid_cold_rows=40)
FIXTURE_ROWS = [  # written to a tmp results CSV, never to results/ or benchmarks/
    dict(SYNTH, timestamp="20260101-000000", expid="DIN_MicroLens_synth", valid_AUC=0.811, valid_logloss=0.45,
         test_AUC=0.809, test_logloss=0.46, train_seconds=61.25, valid_cold_AUC=0.61),
    dict(SYNTH, timestamp="20260102-000000", expid="DIN_MicroLens_synth", valid_AUC=0.801, valid_logloss=0.46,
         test_AUC=0.799, test_logloss=0.47, train_seconds=60.0, valid_cold_AUC=0.612345),   # latest, worse
    dict(SYNTH, timestamp="20260101-000000", expid="DMF_MicroLens_synth", model="DMF", embedding_variant="V4",
         valid_AUC=0.833, valid_logloss=0.43, test_AUC=0.830, test_logloss=0.44, num_params=234567,
         train_seconds=90.5, device="cuda:0 (NVIDIA H200)"),
    dict(timestamp="20260101-000000", expid="DIN_MicroLens", model="DIN", dataset_id="MicroLens_1M_x1",
         embedding_variant="dataset", seed=1, valid_AUC=0.871234, valid_logloss=0.4, num_params=9876543,
         train_seconds=3600, device="cuda:0 (NVIDIA H200)"),                          # real data: hidden test
    dict(timestamp="20260101-000000", expid="DMF_test", model="DMF", dataset_id="MicroLens_synth_tiny",
         embedding_variant="", seed=1, valid_AUC=0.7, valid_logloss=0.5, test_AUC=0.71, test_logloss=0.5,
         oracle_valid_AUC=0.8756, oracle_test_AUC=0.8723, num_params=10481, train_seconds=1.5, device="cpu"),
    dict(SYNTH, timestamp="20260103-000000", expid="DIN_MicroLens_synth", valid_AUC=0.9, overrides={"seed": 7},
         train_seconds=60.0),                                                           # a seed-study row
]


@pytest.fixture()
def results_csv(tmp_path) -> Path:
    path = tmp_path / "results" / "results.csv"
    for row in FIXTURE_ROWS:
        append_result(path, row)
    return path


def read_csv(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def sections(md: str) -> Dict[str, str]:
    ours, published = md.split("## Published figures (published, not re-run here)")
    return {"ours": ours, "published": published}


def snapshot(out: Path) -> Dict[str, bytes]:
    return {ext: out.with_name(f"{out.name}.{ext}").read_bytes() for ext in ("md", "csv", "png")}


def test_leaderboard_files_from_fixture_rows(results_csv, tmp_path):
    paths, warnings = write_leaderboard(results_csv, tmp_path / "out" / "leaderboard")
    assert warnings == []
    assert sorted(p.name for p in paths.values()) == ["leaderboard.csv", "leaderboard.md", "leaderboard.png"]

    table = read_csv(paths["csv"])
    assert [r["expid"] for r in table] == ["DIN_MicroLens", "DMF_MicroLens_synth", "DIN_MicroLens_synth", "DMF_test"]
    by_expid = {r["expid"]: r for r in table}
    assert by_expid["DIN_MicroLens_synth"]["valid_AUC"] == "0.801"   # latest plain row: not the best, not the seed run
    assert by_expid["DIN_MicroLens"]["synthetic"] == "no" and by_expid["DMF_test"]["synthetic"] == "yes"
    assert by_expid["DMF_MicroLens_synth"]["embedding_variant"] == "V4"
    assert by_expid["DMF_test"]["embedding_variant"] == "dataset"    # empty: the dataset's own item embedding
    assert by_expid["DMF_test"]["oracle_valid_AUC"] == "0.8756" and by_expid["DIN_MicroLens"]["test_AUC"] == ""
    assert by_expid["DIN_MicroLens_synth"]["valid_cold_AUC"] == "0.612345"
    assert by_expid["DIN_MicroLens"]["device"] == "cuda:0 (NVIDIA H200)"
    assert {"model", "embedding_variant", "dataset_id", "valid_AUC", "test_AUC", "valid_logloss", "num_params",
            "train_seconds", "oracle_valid_AUC", "oracle_test_AUC", "valid_cold_AUC", "device"} <= set(table[0])

    md = paths["md"].read_text()
    parts = sections(md)
    assert "### MicroLens_1M_x1 (real data)" in parts["ours"]
    assert "### MicroLens_synth_small (synthetic world: not MicroLens results)" in parts["ours"]
    assert "### MicroLens_synth_tiny (synthetic world: not MicroLens results)" in parts["ours"]
    assert parts["ours"].index("MicroLens_1M_x1 (real") < parts["ours"].index("MicroLens_synth_small")
    assert ("| DIN | V3 | `DIN_MicroLens_synth` | 0.801000 | 0.460000 | 0.799000 | 0.470000 | 0.612345 (40 rows) | "
            "123,456 | 60.0 | cpu | 0.875000 | 0.872000 |") in parts["ours"]
    assert ("| DIN | dataset | `DIN_MicroLens` | 0.871234 | 0.400000 | n/a | n/a | n/a | 9,876,543 | 3600.0 | "
            "cuda:0 (NVIDIA H200) |") in parts["ours"]
    assert "latest" in parts["ours"] and "1 row(s) run with `--set` overrides" in parts["ours"]
    # The published figures live only in their own section: never in our table, the CSV or next to our rows.
    for figure in ("0.8655", "0.8797", "0.9247", "0.9231", "0.9124", "0.9306", "0.976603", "0.9839", "0.9798"):
        assert figure in parts["published"]
        assert figure not in parts["ours"] and figure not in paths["csv"].read_text()
    assert len([p for p in PUBLISHED if p.team.startswith("FuxiCTR")]) == 1

    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert not [p for p in paths["md"].parent.iterdir() if ".tmp-" in p.name], "no temp files left behind"


def test_select_best_filter_and_override_rows(results_csv, tmp_path):
    paths, _ = write_leaderboard(results_csv, tmp_path / "lb", select="best", expid_filter="DIN_*")
    table = read_csv(paths["csv"])
    assert [(r["expid"], r["valid_AUC"]) for r in table] == [("DIN_MicroLens", "0.871234"),
                                                             ("DIN_MicroLens_synth", "0.811")]
    assert "best valid AUC" in paths["md"].read_text()
    paths, _ = write_leaderboard(results_csv, tmp_path / "lb", expid_filter="DIN_MicroLens_synth",
                                 with_overrides=True)
    table = read_csv(paths["csv"])
    assert [(r["expid"], r["overrides"], r["valid_AUC"]) for r in table] == [
        ("DIN_MicroLens_synth", "seed=7", "0.9"), ("DIN_MicroLens_synth", "", "0.801")]
    assert "`DIN_MicroLens_synth [seed=7]`" in paths["md"].read_text()


@pytest.mark.parametrize("case", ["typo", "empty", "unrelated", "no_row_left"])
def test_bad_results_file_is_exit_2_and_leaves_existing_files_unchanged(results_csv, tmp_path, capsys, case):
    out = tmp_path / "benchmarks" / "leaderboard"
    assert main(["--results", str(results_csv), "--out", str(out)]) == 0
    before = snapshot(out)
    args = {"typo": ["--results", str(tmp_path / "results" / "resluts.csv")],
            "empty": ["--results", str(tmp_path / "empty.csv")],
            "unrelated": ["--results", str(tmp_path / "other.csv")],
            "no_row_left": ["--results", str(results_csv), "--filter", "DIEN_*"]}[case]
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "other.csv").write_text("name,score\nx,1\n")
    capsys.readouterr()
    assert main(args + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: results "), err
    assert {"typo": "no such file", "empty": "the file is empty", "unrelated": "not a zoo results header",
            "no_row_left": "--filter 'DIEN_*'"}[case] in err
    assert snapshot(out) == before, "an existing leaderboard was overwritten"


def test_damaged_line_is_reported_with_its_line_number_and_other_rows_count(results_csv, tmp_path, capsys):
    text = results_csv.read_text().splitlines(keepends=True)
    text.insert(3, '20260101-000000,"DMF_test,DMF,MicroLens_synth_tiny\n')  # line 4: cut off inside a quote
    results_csv.write_text("".join(text))
    out = tmp_path / "lb"
    assert main(["--results", str(results_csv), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {results_csv}:4: cannot be parsed" in err
    expids = {r["expid"] for r in read_csv(out.with_name("lb.csv"))}
    assert expids == {"DIN_MicroLens", "DMF_MicroLens_synth", "DIN_MicroLens_synth", "DMF_test"}


def test_default_paths_follow_the_work_dir(results_csv, tmp_path, monkeypatch, capsys):
    work = results_csv.parent.parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["--output-dir", str(work)]) == 0
    assert sorted(p.name for p in work.glob("leaderboard.*")) == ["leaderboard.csv", "leaderboard.md",
                                                                   "leaderboard.png"]
    assert list(elsewhere.iterdir()) == []
    monkeypatch.chdir(work)
    assert main(["--out", "pages/lb"]) == 0  # relative to the current directory; results from ./results/
    assert "from `results/results.csv`" in (work / "pages" / "lb.md").read_text()


def test_run_config_runs_missing_expids_then_shows_only_those(results_csv, tmp_path, monkeypatch):
    cfg = tmp_path / "leaderboard.yaml"
    cfg.write_text("expids: [DMF_MicroLens_synth, DIN_SENet_MicroLens_synth]\ngpus: [-1, -1]\nbaselines: false\n")
    calls = []

    def fake_run_jobs(jobs, *, config_dir, gpus, output_dir, results, **kwargs):  # stands in for the real runs
        calls.append(([j.label for j in jobs], list(gpus), Path(output_dir)))
        append_result(results, dict(FIXTURE_ROWS[2], expid="DIN_SENet_MicroLens_synth", model="DIN_SENet",
                                    valid_AUC=0.82))
        return SweepReport(name="leaderboard runs", results=str(results), labels=[j.label for j in jobs])

    monkeypatch.setattr("model_zoo.apps.tuner.run.run_jobs", fake_run_jobs)
    out = tmp_path / "lb"
    assert main(["--results", str(results_csv), "--out", str(out), "--run", str(cfg), "--quiet",
                 "--output-dir", str(tmp_path)]) == 0
    assert calls == [(["DIN_SENet_MicroLens_synth"], [-1, -1], tmp_path)]   # DMF has a row in the fixture CSV
    assert [r["expid"] for r in read_csv(out.with_name("lb.csv"))] == ["DMF_MicroLens_synth",
                                                                        "DIN_SENet_MicroLens_synth"]


def test_run_config_adds_the_simple_baselines_once(tmp_path, monkeypatch):
    """``baselines: true``: the datasets' baseline rows are computed once, then listed next to the models."""
    cfg = tmp_path / "leaderboard.yaml"
    cfg.write_text("expids: [DIN_test]\n")
    results = tmp_path / "results" / "results.csv"

    def fake_run_jobs(jobs, *, results, **kwargs):  # stands in for the real run of DIN_test
        append_result(results, dict(FIXTURE_ROWS[0], expid="DIN_test", dataset_id="MicroLens_synth_tiny"))
        return SweepReport(name="leaderboard runs", results=str(results), labels=[j.label for j in jobs])

    monkeypatch.setattr("model_zoo.apps.tuner.run.run_jobs", fake_run_jobs)
    argv = ["--run", str(cfg), "--quiet", "--output-dir", str(tmp_path), "--out", str(tmp_path / "lb")]
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--gpu", "-1"]) == 0
    shown = sorted(r["model"] for r in read_csv(tmp_path / "lb.csv"))
    assert shown == ["Baseline_item_ctr", "Baseline_logistic_regression", "Baseline_popularity", "DIN"]
    assert main(argv) == 0  # again: baselines are not appended twice
    from model_zoo.apps.results import read_results
    assert sum(r["model"].startswith("Baseline_") for r in read_results(results).rows) == 3


def test_shipped_leaderboard_config_lists_known_expids():
    from model_zoo.config import list_expids

    cfg = leaderboard.load_run_config("config/leaderboard.yaml")  # the shipped file, found from any cwd
    assert set(cfg["expids"]) <= set(list_expids())


def test_synthetic_ids_come_from_dataset_blocks(tmp_path):
    assert {"MicroLens_synth_tiny", "MicroLens_synth_small", "MicroLens_synth_full"} <= synthetic_dataset_ids()
    assert "MicroLens_1M_x1" not in synthetic_dataset_ids()
    (tmp_path / "dataset_config.yaml").write_text(yaml.safe_dump({
        "my_world": {"data_root": "./data/", "synthetic": {"preset": "tiny"}}, "my_real": {"data_root": "./d/"}}))
    ids = synthetic_dataset_ids(tmp_path)
    assert "my_world" in ids and "my_real" not in ids


def test_write_leaderboard_raises_before_writing(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        write_leaderboard(tmp_path / "missing.csv", tmp_path / "lb")
    assert not list(tmp_path.glob("lb*"))


# ---------------------------------------------------------------------------------------------------------------------
# Published figures: each names the zoo expid that runs its method, or why none does
# ---------------------------------------------------------------------------------------------------------------------
def test_published_rows_name_a_known_expid_or_a_reason(results_csv, tmp_path):
    from model_zoo.config import list_expids

    known = set(list_expids())
    by_team = {p.team: p.expid for p in PUBLISHED}
    assert {team: by_team[team] for team in ("momo (1st)", "DISCO.AHU (2nd)", "jzzx.NTU (3rd)",
                                             "FuxiCTR challenge baseline")} == {
        "momo (1st)": "Transformer_DCN_MicroLens", "DISCO.AHU (2nd)": "QIN_MicroLens",
        "jzzx.NTU (3rd)": "DIN_DCN_MicroLens", "FuxiCTR challenge baseline": "DIN_MicroLens"}
    md = sections(write_leaderboard(results_csv, tmp_path / "lb")[0]["md"].read_text())["published"]
    for row in PUBLISHED:
        if row.expid is None:
            assert row.not_runnable and row.command is None
            assert f"not runnable: {row.not_runnable}" in md
            continue
        assert row.expid in known, f"{row.team}: expid {row.expid} is not in the config"
        assert row.command.startswith(f"python run_expid.py --expid {row.expid} --gpu 0")
        assert f"`{row.command}`" in md
    for expid in leaderboard.published_expids():
        assert expid in known, expid
    assert "`python run_expid.py --expid DIN_SENet_MicroLens --gpu 0 --set embedding_variant=V4`" in md
    assert "not runnable: Transformer_DCN_Quant" in md


def test_published_row_needs_exactly_one_of_expid_and_reason():
    with pytest.raises(ValueError, match="exactly one of expid"):
        leaderboard.PublishedResult("t", "m", None, None, "s")
    with pytest.raises(ValueError, match="exactly one of expid"):
        leaderboard.PublishedResult("t", "m", None, None, "s", expid="DIN_MicroLens", not_runnable="why")


# ---------------------------------------------------------------------------------------------------------------------
# Chart
# ---------------------------------------------------------------------------------------------------------------------
def test_auc_axis_is_zoomed_to_the_data_and_holds_every_error_bar_and_the_oracle():
    points = [(0.9258, 0.0013), (0.9307, 0.0005), (0.9190, 0.0010)]
    low, high = leaderboard.auc_axis_range(points, oracle=0.9609)
    assert low <= 0.9190 - 0.0010 and high >= 0.9609          # every error bar and the oracle inside
    assert low > 0.91 and high < 0.97                         # zoomed: not 0.5..1
    low, high = leaderboard.auc_axis_range([(0.85, 0.0), (0.851, 0.0)])
    assert low < 0.85 and high > 0.851 and high - low < 0.01   # a tiny spread still gets a readable width
    assert leaderboard.auc_axis_range([(0.999, 0.002)], oracle=1.0)[1] == 1.0   # clipped to [0, 1]


def write_seeds(path: Path, rows) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["expid", "model", "dataset_id", "n", "valid_AUC_mean",
                                                "valid_AUC_std"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_chart_with_seed_error_bars_is_written(results_csv, tmp_path, capsys):
    seeds = write_seeds(tmp_path / "seeds.csv", [
        dict(expid="DIN_MicroLens_synth", model="DIN", dataset_id="MicroLens_synth_small", n=4,
             valid_AUC_mean=0.805, valid_AUC_std=0.004),
        dict(expid="DMF_test", model="DMF", dataset_id="MicroLens_synth_tiny", n=1, valid_AUC_mean=0.7,
             valid_AUC_std="")])                                     # one seed: no error bar, skipped
    assert leaderboard.read_seed_summaries([seeds]) == {
        ("DIN_MicroLens_synth", "MicroLens_synth_small"): leaderboard.SeedSummary(0.805, 0.004, 4)}
    out = tmp_path / "lb"
    assert main(["--results", str(results_csv), "--out", str(out), "--seeds", str(seeds)]) == 0
    png = out.with_name("lb.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    before = snapshot(out)
    capsys.readouterr()
    assert main(["--results", str(results_csv), "--out", str(out), "--seeds", str(results_csv)]) == 2
    assert "not a seed-study summary" in capsys.readouterr().err
    assert main(["--results", str(results_csv), "--out", str(out), "--seeds", str(tmp_path / "nope.csv")]) == 2
    assert snapshot(out) == before


def test_a_row_run_with_only_verbose_or_its_own_values_is_the_plain_row(tmp_path):
    """``--set verbose=0`` cannot change a result, nor can ``--set seed=20242025`` on an expid whose seed it is (the
    seed study's default-seed run); ``seed=3`` can."""
    path = tmp_path / "results.csv"
    append_result(path, dict(FIXTURE_ROWS[0], overrides={"verbose": 0}))
    append_result(path, dict(FIXTURE_ROWS[0], overrides={"verbose": 0, "seed": 3}, valid_AUC=0.5))
    append_result(path, dict(FIXTURE_ROWS[2], overrides={"seed": 20242025, "batch_size": 1024}))  # both its own
    append_result(path, dict(FIXTURE_ROWS[4], expid="Nonexistent_test", overrides={"seed": 20242025}))   # unknown expid
    paths, _ = write_leaderboard(path, tmp_path / "lb")
    assert [(r["expid"], r["overrides"], r["valid_AUC"]) for r in read_csv(paths["csv"])] == [
        ("DMF_MicroLens_synth", "", "0.833"), ("DIN_MicroLens_synth", "", "0.811")]
    assert "2 row(s) run with `--set` overrides" in paths["md"].read_text()   # seed=3; Nonexistent_test kept as written


def test_run_skips_expids_whose_plain_run_exists_as_a_seed_study_row(tmp_path):
    """``--run`` after a seed study: the run at the expid's own seed is the plain expid, so nothing is run again;
    a row at another seed is not."""
    path = tmp_path / "results.csv"
    append_result(path, dict(FIXTURE_ROWS[2], overrides={"seed": 20242025}))   # DMF_MicroLens_synth at its own seed
    append_result(path, dict(FIXTURE_ROWS[0], overrides={"seed": 3}))          # DIN_MicroLens_synth at another seed
    assert leaderboard.plain_expids(path) == {"DMF_MicroLens_synth"}
    assert leaderboard.plain_expids(tmp_path / "missing.csv") == set()
