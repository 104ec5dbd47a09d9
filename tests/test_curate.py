"""rnaloc curate on real excerpts of the RNALocate exports (test-data/curate-*)."""

import json

import pandas as pd
import pytest

from conftest import leftovers
from rnaloc_tools.data.curate import default_mapping_table, load_mapping, read_sequence_source
from rnaloc_tools.data.terms import DEFAULT_MAPPING, term_key
from rnaloc_tools.formats import read_dataset, read_table


def body(text):
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith("#"))


def frame(text):
    import io

    return pd.read_csv(io.StringIO(body(text)), sep="\t", dtype=str, keep_default_na=False)


@pytest.fixture
def circ(test_data):
    return test_data / "curate-circrna-export.tsv"


def test_circrna_rules_and_counts(cli, circ, tmp_path):
    report = tmp_path / "counts.json"
    out = tmp_path / "circ.tsv"
    r = cli("curate", circ, "--rna-type", "circRNA", "--min-class-size", "1", "--report", report, "-o", out)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    df = read_dataset(out).df
    assert df["label"].value_counts().to_dict() == {"cytoplasm": 12, "nucleus": 9}
    labels = dict(zip(df["id"], df["label"]))
    # both classes -> dropped; cytosol excluded, so Cytosol + Nucleus -> nucleus
    for both in ("hsa_circ_0000173", "hsa_circ_0001161", "hsa_circ_0001793", "hsa_circ_0002281"):
        assert both not in labels
    assert labels["hsa_circ_0001410"] == "nucleus"
    # exosome-only RNAs are not a nucleus/cytoplasm call; mouse rows are filtered out
    assert "hsa_circ_0000009" not in labels
    assert not df["id"].str.startswith("mmu").any()
    # merged by symbol: one row, all its class entries listed
    assert len(df.loc[df["id"] == "hsa_circ_0000511", "entries"].iloc[0].split(",")) == 5
    assert set("".join(df["sequence"])) <= set("ACGU")
    counts = json.loads(report.read_text())
    steps = {s["step"]: (s["count"], s["dropped"]) for s in counts["steps"]}
    assert steps["read"] == (57, 0)
    assert steps["species"] == (54, 3)
    assert steps["terms"] == (38, 16)
    assert steps["merge"] == (25, 0)
    assert steps["single_class"] == (21, 4)
    assert steps["sequence"] == (21, 0)
    assert counts["classes"] == {"nucleus": 9, "cytoplasm": 12}
    assert {t["term"]: t["entries"] for t in counts["terms"]}["Extracellular exosome"] == 13
    assert "single_class: 21 RNAs (4 dropped" in r.stderr
    assert "classes: nucleus 9, cytoplasm 12" in r.stderr
    assert out.read_text().startswith("#rnaloc curate ")


def test_strict_drops_rnas_seen_in_excluded_compartments(cli, circ):
    r = cli("curate", circ, "--rna-type", "circRNA", "--min-class-size", "1", "--strict")
    assert r.exit_code == 0, r.stderr
    df = frame(r.stdout)
    assert df["label"].value_counts().to_dict() == {"cytoplasm": 8, "nucleus": 8}
    assert "hsa_circ_0001410" not in set(df["id"])  # Cytosol + Nucleus


def test_species_all_and_min_class_size(cli, circ):
    r = cli("curate", circ, "--rna-type", "circRNA", "--species", "all", "--min-class-size", "10")
    assert r.exit_code == 0, r.stderr
    df = frame(r.stdout)
    assert set(df["label"]) == {"cytoplasm"}  # 9 nucleus RNAs < 10: class dropped
    assert df["id"].str.startswith("mmu").any()
    assert "classes under 10: nucleus (9)" in r.stderr
    assert "only one class left" in r.stderr


def test_tsv_report(cli, circ, tmp_path):
    report = tmp_path / "counts.tsv"
    r = cli("curate", circ, "--rna-type", "circRNA", "--min-class-size", "1", "--report", report, "-o", tmp_path / "o.tsv")
    assert r.exit_code == 0, r.stderr
    rep = pd.read_csv(report, sep="\t", dtype=str, keep_default_na=False)
    assert list(rep.columns) == ["section", "name", "count", "dropped", "note"]
    assert rep[(rep.section == "class") & (rep.name == "nucleus")]["count"].item() == "9"


def test_lncrna_sequences_joined_from_fasta(cli, test_data, tmp_path):
    report = tmp_path / "r.json"
    r = cli("curate", test_data / "curate-lncrna-entries.tsv", "--rna-type", "lncRNA",
            "--sequences", test_data / "curate-lncrna-sequences.fa", "--min-class-size", "1", "--report", report)
    assert r.exit_code == 0, r.stderr
    df = frame(r.stdout)
    assert list(df["id"]) == ["HULC"] and list(df["label"]) == ["cytoplasm"]
    assert len(df["sequence"].iloc[0]) == 500
    seq = [s for s in json.loads(report.read_text())["steps"] if s["step"] == "sequence"][0]
    assert seq["count"] == 1 and seq["dropped"] == 13
    assert "13 RNAs without a sequence" in seq["note"]


def test_sequence_table_keys(test_data):
    lookup = read_sequence_source(test_data / "curate-mirbase-excerpt.txt")  # CRLF, miRBase columns
    assert lookup["hsa-let-7a-1"] == lookup["miRBase:MI0000060"]
    assert lookup["hsa-let-7a-1"].startswith("UGGGAUGAGGUAGUAGG")


def test_export_from_stdin(cli, circ):
    r = cli("curate", "-", "--rna-type", "circRNA", "--min-class-size", "1", input=circ.read_text())
    assert r.exit_code == 0, r.stderr
    assert len(frame(r.stdout)) == 21


def test_default_mapping_knows_every_term_of_the_real_exports(test_data):
    for name, rna_type, col in (("curate-circrna-export.tsv", "circRNA", "Subcellular_Localization"),
                                ("curate-lncrna-entries.tsv", "lncRNA", "Subcellular Localization")):
        terms = set(read_table(test_data / name).df[col])
        mapping = load_mapping(rna_type)
        assert {t for t in terms if term_key(t) not in mapping} == set()
    assert load_mapping("lncRNA")[term_key("Cytosol")] == "exclude"
    assert load_mapping("miRNA")[term_key("exosome")] == "extracellular"


def test_show_mapping_round_trips(cli, circ, tmp_path):
    r = cli("curate", "--show-mapping")
    assert r.exit_code == 0
    mapping = tmp_path / "mapping.tsv"
    mapping.write_text(r.stdout)
    assert len(default_mapping_table()) == sum(len(v) for v in DEFAULT_MAPPING.values())
    a = cli("curate", circ, "--rna-type", "circRNA", "--min-class-size", "1", "--mapping", mapping)
    b = cli("curate", circ, "--rna-type", "circRNA", "--min-class-size", "1")
    assert a.exit_code == 0 and body(a.stdout) == body(b.stdout)


# ------------------------------------------------------------------ bad inputs


def _fails(r, *needles, folder=None):
    assert r.exit_code == 1, (r.exit_code, r.stdout, r.stderr)
    errors = [line for line in r.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, r.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert "Traceback" not in r.stderr
    if folder is not None:
        assert leftovers(folder) == []
        assert not (folder / "out.tsv").exists()
    return errors[0]


def test_unknown_terms_are_listed_with_counts(cli, circ, test_data, tmp_path):
    minimal = test_data / "curate-mapping-minimal.tsv"
    r = cli("curate", circ, "--rna-type", "circRNA", "--mapping", minimal, "-o", tmp_path / "out.tsv")
    _fails(r, "unknown localization term(s) for circRNA", "Extracellular exosome 13", "Cytosol 2",
           "Mitochondrion 1", "--ignore-unknown", folder=tmp_path)
    ok = cli("curate", circ, "--rna-type", "circRNA", "--mapping", minimal, "--ignore-unknown",
             "--min-class-size", "1")
    assert ok.exit_code == 0
    assert "ignoring entries with unknown localization term(s): Extracellular exosome 13" in ok.stderr
    assert "16 unknown, ignored" in ok.stderr


def test_missing_column(cli, circ, tmp_path):
    export = tmp_path / "export.tsv"
    read_table(circ).df.drop(columns="Subcellular_Localization").to_csv(export, sep="\t", index=False)
    r = cli("curate", export, "--rna-type", "circRNA", "-o", tmp_path / "out.tsv")
    _fails(r, "missing column(s): term (one of: Subcellular_Localization", "the header has: RNALocate_ID",
           folder=tmp_path)
    no_species = tmp_path / "nospecies.tsv"
    read_table(circ).df.drop(columns="Species").to_csv(no_species, sep="\t", index=False)
    _fails(cli("curate", no_species, "--rna-type", "circRNA"), "missing column: species", "--species all")


def test_nothing_left_after_filtering(cli, test_data, tmp_path):
    r = cli("curate", test_data / "curate-lncrna-entries.tsv", "--rna-type", "lncRNA", "--min-class-size", "1",
            "-o", tmp_path / "out.tsv", "--report", tmp_path / "r.json")
    _fails(r, "nothing left after filtering: step 'sequence' kept 0 of 14 RNAs", folder=tmp_path)
    assert not (tmp_path / "r.json").exists()
    assert "merge: 16 RNAs" in r.stderr  # the counts are still shown
    r = cli("curate", test_data / "curate-circrna-export.tsv", "--rna-type", "miRNA")
    _fails(r, "step 'rna_type' kept 0 of 54 entries")


def test_bad_mapping_and_bad_sequence(cli, circ, tmp_path):
    mapping = tmp_path / "m.tsv"
    mapping.write_text("term\tclass\nNucleus\tnuclear\n")
    _fails(cli("curate", circ, "--rna-type", "circRNA", "--mapping", mapping), "class 'nuclear' is not one of")
    export = tmp_path / "export.tsv"
    df = read_table(circ).df
    df.loc[df.index[5], "Sequence"] = "ACGUXXACGU"
    df.to_csv(export, sep="\t", index=False)
    _fails(cli("curate", export, "--rna-type", "circRNA", "--species", "all"),
           f"record {df.loc[df.index[5], 'RNALocate_ID']!r}", "illegal letter(s) 'X'")


def test_output_to_a_device_is_written_not_replaced(cli, circ, tmp_path):
    import os
    import stat

    from rnaloc_tools.errors import RnalocError
    from rnaloc_tools.fileio import atomic_path

    r = cli("curate", circ, "--rna-type", "circRNA", "--min-class-size", "1", "-o", os.devnull)
    assert r.exit_code == 0, r.stderr
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)  # still the device, not a renamed file
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(RnalocError, match="not a regular file"):
        with atomic_path(fifo):
            pass
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_report_and_dataset_both_on_stdout_is_refused(cli, circ):
    # --report - with the dataset on stdout would interleave the count table with the dataset TSV
    r = cli("curate", circ, "--rna-type", "circRNA", "--min-class-size", "1", "--report", "-")
    assert r.exit_code == 2
    assert "--report" in r.stderr and r.stdout == ""
