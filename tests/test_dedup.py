"""rnaloc dedup with the real cd-hit-est, on real excerpts (test-data/dedup-*)."""

import io
import random
import shutil

import pandas as pd
import pytest

from conftest import leftovers
from rnaloc_tools.data.cdhit import parse_clstr, word_size
from rnaloc_tools.errors import InputError

needs_cdhit = pytest.mark.skipif(shutil.which("cd-hit-est") is None, reason="cd-hit-est not installed")


def frame(text):
    body = "".join(line + "\n" for line in text.splitlines() if not line.startswith("#"))
    return pd.read_csv(io.StringIO(body), sep="\t", dtype=str, keep_default_na=False)


def body(path_or_text):
    text = path_or_text if isinstance(path_or_text, str) else path_or_text.read_text()
    return [line for line in text.splitlines() if not line.startswith("#rnaloc dedup")]


@pytest.mark.parametrize("identity, n", [(1.0, 10), (0.95, 10), (0.9, 8), (0.88, 7), (0.86, 6), (0.8, 5),
                                         (0.79, 4), (0.75, 4)])
def test_word_size_follows_the_cdhit_guide(identity, n):
    assert word_size(identity) == n


def test_identity_below_cdhit_range_is_a_usage_error(cli, test_data):
    r = cli("dedup", test_data / "dedup-input.tsv", "-c", "0.7")
    assert r.exit_code == 2


@needs_cdhit
def test_representatives_match_expected_file(cli, test_data, tmp_path):
    out = tmp_path / "nr.tsv"
    r = cli("dedup", test_data / "dedup-input.tsv", "-o", out, "-t", "1")
    assert r.exit_code == 0, r.stderr
    assert body(out) == body(test_data / "dedup-input.expected.tsv")
    assert "38 sequences -> 30 clusters (cd-hit-est -c 0.8 -n 5); kept 30 representatives" in r.stderr
    assert "2 cluster(s) hold more than one label" in r.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("#rnaloc curate") and lines[1].startswith("#rnaloc dedup")  # provenance kept


@needs_cdhit
def test_keep_all_adds_cluster_columns(cli, test_data):
    r = cli("dedup", test_data / "dedup-input.tsv", "--keep", "all")
    assert r.exit_code == 0, r.stderr
    df = frame(r.stdout)
    assert len(df) == 38 and df["cluster"].nunique() == 30
    by_cluster = df.groupby("cluster")["id"].apply(set).to_dict()
    assert by_cluster["hsa_circ_0000518"] == {"hsa_circ_0000517", "hsa_circ_0000518", "hsa_circ_0000520"}
    assert (df.groupby("cluster")["cluster_size"].first().astype(int) == df.groupby("cluster").size()).all()
    # every cluster's representative is one of its rows, and the longest
    for rep, part in df.groupby("cluster"):
        assert rep in set(part["id"])
        assert len(part.set_index("id").loc[rep, "sequence"]) == part["sequence"].str.len().max()


@needs_cdhit
def test_saved_clstr_round_trips(cli, test_data, tmp_path):
    clstr = tmp_path / "c.clstr"
    a = cli("dedup", test_data / "dedup-input.tsv", "--keep", "all", "--save-clstr", clstr)
    b = cli("dedup", test_data / "dedup-input.tsv", "--keep", "all", "--clstr", clstr)
    assert a.exit_code == b.exit_code == 0
    assert frame(a.stdout).equals(frame(b.stdout))
    assert len(parse_clstr(clstr)) == 30


def test_save_clstr_with_given_clstr_keeps_a_copy(cli, test_data, tmp_path):
    # --clstr with --save-clstr (the Galaxy wrapper's "existing clusters" plus the optional .clstr
    # output) must still write the .clstr asked for: the clusters used, i.e. the given file
    saved = tmp_path / "saved.clstr"
    r = cli("dedup", test_data / "dedup-input.tsv", "--clstr", test_data / "dedup-input.clstr",
            "--save-clstr", saved, "-o", tmp_path / "out.tsv")
    assert r.exit_code == 0, r.stderr
    assert saved.read_bytes() == (test_data / "dedup-input.clstr").read_bytes()
    assert leftovers(tmp_path) == []


@needs_cdhit
def test_short_mirnas_become_singletons(cli, test_data):
    r = cli("dedup", test_data / "dedup-mirna.tsv", "--keep", "all", "--min-length", "19")
    assert r.exit_code == 0, r.stderr
    df = frame(r.stdout)
    short = df[df["sequence"].str.len() <= 19]
    assert len(short) == 6 and (short["cluster"] == short["id"]).all()
    assert "6 sequence(s) of 19 nt or shorter are not clustered" in r.stderr
    # mature let-7 3p arms fall into the cluster of the let-7b precursor
    members = set(df.loc[df["cluster"] == "pre-let-7b", "id"])
    assert {"pre-let-7b", "hsa-let-7a-3p"} <= members


@needs_cdhit
def test_long_sequences_of_tens_of_kb(cli, test_data, tmp_path):
    seqs = frame((test_data / "dedup-input.tsv").read_text())["sequence"]
    long = ("".join(seqs) * 4)[:30000]  # 30 kb made of real circRNA sequence
    rng = random.Random(0)
    variant = "".join(rng.choice("ACGU") if rng.random() < 0.05 else c for c in long)
    dataset = tmp_path / "long.tsv"
    pd.DataFrame({"id": ["long", "long_variant", "long_half", "other"], "rna_type": "lncRNA",
                  "label": ["nucleus", "nucleus", "cytoplasm", "cytoplasm"],
                  "sequence": [long, variant, long[:15000], seqs.iloc[0][::-1] * 3]}
                 ).to_csv(dataset, sep="\t", index=False)
    clstr = tmp_path / "long.clstr"
    r = cli("dedup", dataset, "--keep", "all", "--save-clstr", clstr)
    assert r.exit_code == 0, r.stderr
    df = frame(r.stdout).set_index("id")
    assert df.loc[["long", "long_variant", "long_half"], "cluster"].tolist() == ["long"] * 3
    assert df.loc["long", "sequence"] == long.replace("T", "U") and len(df.loc["long", "sequence"]) == 30000
    lengths = {m.name: m.length for members in parse_clstr(clstr) for m in members}
    assert lengths["long"] == 30000 and lengths["long_variant"] == 30000  # not cut by cd-hit's limits


@needs_cdhit
def test_pipe_from_stdin(cli, test_data):
    r = cli("dedup", "-", input=(test_data / "dedup-input.tsv").read_text())
    assert r.exit_code == 0, r.stderr
    assert len(frame(r.stdout)) == 30


# ------------------------------------------------------------------ bad inputs


def _fails(r, *needles):
    assert r.exit_code == 1, (r.exit_code, r.stdout, r.stderr)
    errors = [line for line in r.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_cdhit_not_installed(cli, test_data, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    out = tmp_path / "out.tsv"
    r = cli("dedup", test_data / "dedup-input.tsv", "-o", out)
    _fails(r, "cd-hit-est is not installed", "apt-get install cd-hit", "conda install -c bioconda cd-hit")
    assert not out.exists() and leftovers(tmp_path) == []


def test_malformed_clstr(cli, test_data, tmp_path):
    out = tmp_path / "out.tsv"
    r = cli("dedup", test_data / "dedup-input.tsv", "--clstr", test_data / "dedup-malformed.clstr", "-o", out)
    _fails(r, "dedup-malformed.clstr:2: malformed .clstr file: unexpected line")
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("text, problem", [
    ("0\t490nt, >a... *\n", "a member line before the first '>Cluster' header"),
    (">Cluster 0\n0\t490nt, >a... at +/90.00%\n", "a cluster with 0 representatives"),
    (">Cluster 0\n0\t490nt, >a... *\n1\t400nt, >b... *\n", "a cluster with 2 representatives"),
    (">Cluster 0\n0\t490nt, >a... *\n>Cluster 1\n0\t490nt, >a... *\n", "sequence 'a' appears twice"),
    ("", "no clusters"),
])
def test_clstr_parser_rejects(tmp_path, text, problem):
    path = tmp_path / "x.clstr"
    path.write_text(text)
    with pytest.raises(InputError, match="malformed .clstr file") as exc:
        parse_clstr(path)
    assert problem in str(exc.value)


def test_clstr_naming_unknown_ids(cli, test_data, tmp_path):
    clstr = tmp_path / "x.clstr"
    clstr.write_text(">Cluster 0\n0\t490nt, >not_in_the_dataset... *\n")
    _fails(cli("dedup", test_data / "dedup-input.tsv", "--clstr", clstr), "not in the input", "not_in_the_dataset")


def test_missing_sequence_column(cli, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tlabel\nx\tnucleus\n")
    _fails(cli("dedup", bad), "missing column(s) sequence")


def test_id_with_white_space_names_the_file_and_record(cli, tmp_path):
    # cd-hit-est cuts names at white space: the error must say which file and record, like every input error
    data = tmp_path / "ws.tsv"
    data.write_text("id\trna_type\tlabel\tsequence\nx y\tcircRNA\tnucleus\tACGUACGUACGUACGUACGU\n")
    r = cli("dedup", data, "-o", tmp_path / "out.tsv")
    assert r.exit_code == 1
    assert "ws.tsv: record 'x y'" in r.stderr and "white space" in r.stderr
    assert not (tmp_path / "out.tsv").exists() and leftovers(tmp_path) == []
    r = cli("split", data, "--against", data, "--test-size", "0", "--folds", "0")
    assert r.exit_code == 1
    assert "ws.tsv: record 'x y'" in r.stderr


@needs_cdhit
def test_cdhit_failure_says_why(cli, test_data, tmp_path):
    # -M 1 is below what cd-hit-est needs: its reason (on its stderr) must reach the user
    r = cli("dedup", test_data / "dedup-input.tsv", "--memory", "1", "-o", tmp_path / "out.tsv")
    assert r.exit_code == 1
    assert "cd-hit-est failed" in r.stderr and "not enough memory" in r.stderr
    assert not (tmp_path / "out.tsv").exists() and leftovers(tmp_path) == []


def test_clstr_missing_a_long_sequence_is_an_error(cli, test_data, tmp_path):
    # a .clstr lists every sequence longer than cd-hit-est's -l: a long one absent means the clusters
    # come from other data, and must not be passed off as "too short for cd-hit-est"
    data = tmp_path / "plus.tsv"
    data.write_text((test_data / "dedup-input.tsv").read_text()
                    + "extra1\tcircRNA\tnucleus\tACGUACGUACGUACGUACGUAAAGGGCCCUUU\tHomo sapiens\tx\t1\tNucleus\n")
    r = cli("dedup", data, "--clstr", test_data / "dedup-input.clstr", "-o", tmp_path / "out.tsv")
    assert r.exit_code == 1
    assert "dedup-input.clstr: record 'extra1'" in r.stderr and "not in it" in r.stderr
    assert not (tmp_path / "out.tsv").exists() and leftovers(tmp_path) == []
    r = cli("dedup", data, "--clstr", test_data / "dedup-input.clstr", "--min-length", "40")
    assert r.exit_code == 0, r.stderr
