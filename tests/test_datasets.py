"""datasets/ holds the real tables, unchanged: every file in MANIFEST.tsv, with its checksum,
row count and label counts, and nothing unlisted."""

import hashlib

import pandas as pd
import pytest

from rnaloc_tools.formats import read_table

from conftest import REPO

MANIFEST = pd.read_csv(REPO / "datasets" / "MANIFEST.tsv", sep="\t", comment="#", dtype=str, keep_default_na=False)


def test_manifest_lists_every_data_file(datasets):
    on_disk = sorted(str(p.relative_to(datasets)) for p in datasets.rglob("*.gz"))
    assert on_disk == sorted(MANIFEST.file)


@pytest.mark.parametrize("row", MANIFEST.to_dict("records"), ids=list(MANIFEST.file))
def test_file_matches_its_manifest_row(datasets, row):
    path = datasets / row["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
    if row["file"].startswith("raw/"):
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        assert len(df) == int(row["rows"])
        return
    df = read_table(str(path)).df  # the project's own strict reader takes every table as it is
    assert len(df) == int(row["rows"])
    counts = ",".join(f"{k}:{v}" for k, v in sorted(df["label"].value_counts().items()))
    assert counts == row["labels"]
    assert df["id"].is_unique
