"""rnaloc split on a real excerpt with cd-hit-est clusters (test-data/split-input.tsv)."""

import io
import shutil

import pandas as pd
import pytest

from conftest import leftovers

needs_cdhit = pytest.mark.skipif(shutil.which("cd-hit-est-2d") is None, reason="cd-hit-est-2d not installed")


def frame(text):
    body = "".join(line + "\n" for line in text.splitlines() if not line.startswith("#"))
    return pd.read_csv(io.StringIO(body), sep="\t", dtype=str, keep_default_na=False)


@pytest.fixture
def data(test_data):
    return test_data / "split-input.tsv"


def test_grouped_stratified_seeded(cli, data):
    r = cli("split", data, "-k", "3", "--seed", "7")
    assert r.exit_code == 0, r.stderr
    df = frame(r.stdout)
    source = frame(data.read_text())
    assert list(df["id"]) == list(source["id"])  # order and rows kept, columns added
    assert set(df["split"]) == {"train", "test"}
    assert set(df.loc[df["split"] == "train", "fold"]) == {"1", "2", "3"}
    assert set(df.loc[df["split"] == "test", "fold"]) == {"test"}
    # a cluster never straddles train/test or two folds
    assert (df.groupby("cluster")["fold"].nunique() == 1).all()
    # stratified: both classes on each side and in each fold
    assert (df.groupby("fold")["label"].nunique() == 2).all()
    assert 0.1 <= (df["split"] == "test").mean() <= 0.3
    again = cli("split", data, "-k", "3", "--seed", "7")
    other = cli("split", data, "-k", "3", "--seed", "8")
    assert frame(again.stdout).equals(df)
    assert not frame(other.stdout)["fold"].equals(df["fold"])
    assert "test: " in r.stderr and "train fold 1: " in r.stderr


def test_no_test_part_and_no_folds(cli, data):
    df = frame(cli("split", data, "--test-size", "0", "-k", "3").stdout)
    assert set(df["split"]) == {"train"} and set(df["fold"]) == {"1", "2", "3"}
    df = frame(cli("split", data, "-k", "0").stdout)
    assert "fold" not in df.columns and set(df["split"]) == {"train", "test"}


def test_without_cluster_column_rows_are_their_own_groups(cli, data, tmp_path):
    plain = tmp_path / "plain.tsv"
    frame(data.read_text()).drop(columns=["cluster", "cluster_size"]).to_csv(plain, sep="\t", index=False)
    r = cli("split", plain, "-k", "3")
    assert r.exit_code == 0
    assert "no 'cluster' column" in r.stderr


def test_output_file_keeps_provenance(cli, data, tmp_path):
    out = tmp_path / "s.tsv"
    assert cli("split", data, "-k", "3", "-o", out).exit_code == 0
    heads = [line for line in out.read_text().splitlines() if line.startswith("#")]
    assert [h.split()[1] for h in heads] == ["curate", "dedup", "split"]


@needs_cdhit
def test_against_drops_rows_near_the_other_set_both_directions(cli, data, tmp_path):
    df = frame(data.read_text())
    singles = df[df["cluster_size"] == "1"]
    copy, longer = singles.iloc[0], singles.iloc[1]
    # an exact copy (found with db1 = the other set), and a 60% prefix: shorter than our row,
    # so only found with db1 = our rows (cd-hit-est-2d reports the shorter partner only)
    prefix = longer["sequence"][: int(len(longer["sequence"]) * 0.6)]
    against = tmp_path / "test.fa"
    against.write_text(f">bench1\n{copy['sequence']}\n>bench2\n{prefix}\n")
    r = cli("split", data, "--against", against, "--test-size", "0", "-k", "3")
    assert r.exit_code == 0, r.stderr
    kept = frame(r.stdout)
    assert set(df["id"]) - set(kept["id"]) == {copy["id"], longer["id"]}
    assert "dropped 2 row(s) within 80% identity" in r.stderr


# ------------------------------------------------------------------ bad inputs


def _fails(r, *needles):
    assert r.exit_code == 1, (r.exit_code, r.stdout, r.stderr)
    errors = [line for line in r.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_too_few_clusters_for_the_folds(cli, data, tmp_path):
    out = tmp_path / "out.tsv"
    _fails(cli("split", data, "-k", "40", "-o", out), "cannot make 40 folds", "fewer than the 40 needed")
    assert not out.exists() and leftovers(tmp_path) == []


def test_missing_label_column(cli, data, tmp_path):
    bad = tmp_path / "bad.tsv"
    frame(data.read_text()).drop(columns="label").to_csv(bad, sep="\t", index=False)
    _fails(cli("split", bad), "missing column(s) label")


def test_one_fold_is_a_usage_error(cli, data):
    assert cli("split", data, "-k", "1").exit_code == 2


def test_against_without_cdhit(cli, data, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    _fails(cli("split", data, "--against", data), "cd-hit-est-2d is not installed", "apt-get install cd-hit")


@needs_cdhit
def test_against_itself_leaves_nothing(cli, data, tmp_path):
    out = tmp_path / "out.tsv"
    _fails(cli("split", data, "--against", data, "-o", out), "nothing left")
    assert not out.exists() and leftovers(tmp_path) == []


@needs_cdhit
def test_real_shell_pipe_curate_dedup_split(test_data, tmp_path):
    import subprocess
    import sys

    rnaloc = f"{sys.executable} -m rnaloc_tools"
    export = test_data / "curate-circrna-export.tsv"
    cmd = (f"cat {export} | {rnaloc} curate - --rna-type circRNA --min-class-size 1 "
           f"| {rnaloc} dedup - --keep all | {rnaloc} split - -k 2 --seed 3 > {tmp_path / 'out.tsv'}")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True,
                          env={**__import__("os").environ, "RNALOC_NO_PROGRESS": "1"})
    assert proc.returncode == 0, proc.stderr
    df = frame((tmp_path / "out.tsv").read_text())
    assert len(df) == 21 and {"cluster", "split", "fold"} <= set(df.columns)
    heads = [line.split()[1] for line in (tmp_path / "out.tsv").read_text().splitlines() if line.startswith("#")]
    assert heads == ["curate", "dedup", "split"]
