"""rnaloc motifs: planted motifs, random attention, known motifs, MEME round trip, bad inputs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from Bio import motifs as bio_motifs
from conftest import leftovers, one_error_line

from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingWriter
from rnaloc_tools.motifs import (
    Outputs,
    Params,
    Sequence,
    find_motifs,
    load_inputs,
    run_motifs,
)
from rnaloc_tools.motifs.discover import _CODE, align
from rnaloc_tools.motifs.known import match_starts

PLANTED = "GAUGAACCUA"
META = {"dim": 1, "rna_type": "circRNA", "classes": ["nucleus", "cytoplasm"], "model": "test"}


def smooth_noise(rng, n):
    """Autocorrelated attention, like a real model's: long runs above and below the median."""
    return np.convolve(rng.normal(size=n + 10), np.ones(11) / 11, mode="valid")[:n]


def planted_set(seed=1, n=120, length=200, planted=80, peaked=True):
    """Random sequences; the first ``planted`` carry PLANTED at a known position, attention peaked there."""
    rng = np.random.default_rng(seed)
    seqs, atts, where = {}, {}, {}
    for i in range(n):
        s = list(rng.choice(list("ACGU"), length))
        a = smooth_noise(rng, length)
        if i < planted:
            p = int(rng.integers(10, length - 30))
            s[p : p + len(PLANTED)] = PLANTED
            if peaked:
                a[p : p + len(PLANTED)] += 3
            where[f"s{i}"] = p
        seqs[f"s{i}"] = "".join(s)
        atts[f"s{i}"] = a.astype(np.float32)
    labels = {k: ("nucleus" if i < planted else "cytoplasm") for i, k in enumerate(seqs)}
    return seqs, atts, labels, where


def write_fasta(path, seqs):
    with open(path, "w") as fh:
        fh.writelines(f">{k}\n{v}\n" for k, v in seqs.items())
    return path


def write_dataset(path, seqs, labels, rna_type="circRNA"):
    with open(path, "w") as fh:
        fh.write("id\trna_type\tlabel\tsequence\n")
        fh.writelines(f"{k}\t{rna_type}\t{labels[k]}\t{v}\n" for k, v in seqs.items())
    return path


def write_attention(path, atts, meta=META):
    with EmbeddingWriter(path, meta, dtype=np.float32, format_name=ATTENTION_FORMAT) as w:
        for k, a in atts.items():
            w.add(k, np.asarray(a, np.float32)[:, None])
    return path


def read_tsv(path):
    return pd.read_csv(path, sep="\t", comment="#")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("planted")
    seqs, atts, labels, where = planted_set()
    return {
        "fasta": write_fasta(folder / "seqs.fa", seqs),
        "tsv": write_dataset(folder / "seqs.tsv", seqs, labels),
        "att": write_attention(folder / "att.npz", atts),
        "where": where,
        "seqs": seqs,
        "folder": folder,
    }


@pytest.fixture(scope="module")
def planted_run(planted):
    out = planted["folder"] / "out"
    result = run_motifs([planted["att"]], planted["tsv"], Outputs.in_folder(str(out)))
    return result, out


def test_planted_motif_is_found(planted_run, planted):
    result, out = planted_run
    table = read_tsv(out / "motifs.tsv")
    nucleus = table[table["class"] == "nucleus"]
    assert len(nucleus) >= 1
    best = nucleus.iloc[0]
    assert best["consensus"] == PLANTED
    assert best["seed"] == PLANTED
    assert best["q"] < 1e-10
    assert best["support"] == 80 and best["background_support"] == 0
    # Nothing was planted in the cytoplasm sequences, and their attention is noise.
    assert (table["class"] == "cytoplasm").sum() == 0
    # The matrix is dominated by the planted letters.
    counts = result.motifs[0].counts
    assert "".join("ACGU"[i] for i in counts.argmax(axis=1)) == PLANTED
    assert (counts.max(axis=1) / counts.sum(axis=1) > 0.6).all()


def test_regions_cover_the_planted_positions(planted_run, planted):
    _, out = planted_run
    regions = read_tsv(out / "regions.tsv")
    assert list(regions.columns[:5]) == ["id", "start", "end", "class", "mean_attention"]
    for rid, p in planted["where"].items():
        mine = regions[regions["id"] == rid]
        assert ((mine["start"] <= p) & (mine["end"] >= p + len(PLANTED))).any(), rid
    row = regions.iloc[0]
    assert planted["seqs"][row["id"]][row["start"] : row["end"]] == row["sequence"]
    assert (regions["end"] - regions["start"] >= 5).all()


def test_meme_file_parses_and_round_trips_the_matrices(planted_run):
    result, out = planted_run
    text = (out / "motifs.meme").read_text()
    assert text.startswith("#rnaloc motifs ")
    assert "\nMEME version 4\n" in text and "\nALPHABET= ACGU\n" in text
    with open(out / "motifs.meme") as fh:
        record = bio_motifs.parse(fh, "minimal")
    assert record.alphabet == "ACGU"
    assert [m.name for m in record] == [m.name for m in result.motifs]
    assert len(record) >= 1
    for parsed, mine in zip(record, result.motifs):
        assert parsed.length == mine.width
        for i, letter in enumerate("ACGU"):
            assert list(parsed.counts[letter]) == pytest.approx(mine.counts[:, i].tolist(), abs=0)
    assert sum(record.background.values()) == pytest.approx(1, abs=1e-5)


def test_logos_are_pngs(planted_run):
    result, out = planted_run
    logos = sorted((out / "logos").iterdir())
    assert [p.name for p in logos] == sorted(f"{m.name}.png" for m in result.motifs)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in logos)
    assert leftovers(out) == [] and leftovers(out / "logos") == []


def test_known_motif_counts_in_planted_data(planted_run):
    _, out = planted_run
    known = read_tsv(out / "known_motifs.tsv")
    gauga = known[(known["motif"] == "GAUGAA") & (known["class"] == "nucleus")].iloc[0]
    # GAUGAA is the start of the planted motif: in all 80 nucleus sequences, inside the peak.
    assert gauga["with_motif"] == 80 and gauga["sequences_important"] == 80
    assert gauga["q"] < 1e-10 and gauga["q_class"] < 1e-10
    assert set(known["motif"]) == {"GAUGAA"}  # circRNA: only its own known motif


@pytest.mark.parametrize("background, planted_in", [("rest", 80), ("other-class", 120)])
def test_random_attention_gives_no_significant_motif(tmp_path, cli, background, planted_in):
    # rest: attention vs the rest of the same sequences; the motif is planted in the nucleus
    # sequences but the attention ignores it. other-class: attended regions of one class vs
    # the other's, which also reports k-mers that differ between the classes whatever the
    # attention, so here the motif is planted in every sequence.
    seqs, atts, labels, _ = planted_set(seed=2, planted=planted_in, peaked=False)
    labels = {k: ("nucleus" if i < 80 else "cytoplasm") for i, k in enumerate(seqs)}
    att = write_attention(tmp_path / "att.npz", atts)
    tsv = write_dataset(tmp_path / "seqs.tsv", seqs, labels)
    out = tmp_path / "out"
    r = cli("motifs", att, "-s", tsv, "-o", out, "--background", background)
    assert r.exit_code == 0, r.stderr
    assert len(read_tsv(out / "motifs.tsv")) == 0
    assert "no significant motifs" in r.stderr
    with open(out / "motifs.meme") as fh:
        assert len(bio_motifs.parse(fh, "minimal")) == 0
    assert not list((out / "logos").glob("*.png"))
    known = read_tsv(out / "known_motifs.tsv")
    nucleus = known[known["class"] == "nucleus"].iloc[0]
    assert nucleus["with_motif"] == 80
    assert nucleus["q"] > 0.05  # in every nucleus sequence, but not where the attention is
    if planted_in == 80:
        assert nucleus["q_class"] < 1e-10  # ... though it does go with the class


def test_other_class_background_finds_the_class_motif(planted, tmp_path, cli):
    out = tmp_path / "o"
    r = cli("motifs", planted["att"], "-s", planted["tsv"], "-o", out, "--background", "other-class", "-k", "6-12")
    assert r.exit_code == 0, r.stderr
    table = read_tsv(out / "motifs.tsv")
    assert list(table["consensus"][:1]) == [PLANTED]
    assert set(table["class"]) == {"nucleus"}


def test_class_from_predictions_and_none(planted, tmp_path, cli):
    ids = list(planted["seqs"])
    pred = tmp_path / "pred.tsv"
    pd.DataFrame({"id": ids, "rna_type": "circRNA", "prediction": ["cytoplasm"] * 80 + ["nucleus"] * 40}).to_csv(
        pred, sep="\t", index=False
    )
    r = cli("motifs", planted["att"], "-s", planted["fasta"], "-p", pred, "--motifs", "-", "--no-known")
    assert r.exit_code == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if not ln.startswith("#")]
    assert lines[0].startswith("motif\tclass\tconsensus")
    assert lines[1].split("\t")[1:3] == ["cytoplasm", PLANTED]  # the predicted class, not the label
    r = cli("motifs", planted["att"], "-s", planted["tsv"], "--class-from", "none", "--motifs", "-")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[3].split("\t")[1:3] == ["all", PLANTED]


def test_sequences_from_a_shell_pipe(planted):
    cmd = (f"cat '{planted['fasta']}' | '{sys.executable}' -m rnaloc_tools motifs '{planted['att']}' -s - "
           "--class-from none --motifs - --no-known -k 10 | head -n 4")
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rows = [ln.split("\t") for ln in done.stdout.splitlines() if not ln.startswith("#")]
    assert rows[0][:3] == ["motif", "class", "consensus"] and rows[1][2] == PLANTED
    assert "Traceback" not in done.stderr


def iupac_codes(seq):
    return _CODE[np.frombuffer(seq.encode(), np.uint8)]


def test_iupac_matching():
    assert match_starts(iupac_codes("ACCUCCCGCCUCCCUCCUCCC"), "RCCUCCC").tolist() == [0, 7]
    assert match_starts(iupac_codes("AGAGUAAGCGUCAGNGUU"), "AGNGUN").tolist() == [0, 6]  # N in a sequence never matches
    assert match_starts(iupac_codes("AAAA"), "AAAAA").tolist() == []


def test_known_motif_counts_are_exact():
    # U-only filler cannot match AGCCC or RCCUCCC; motifs planted at known places.
    def seq_with(*planted):
        s = ["U"] * 60
        for pos, motif in planted:
            s[pos : pos + len(motif)] = motif
        return "".join(s)

    def attention(high):
        a = np.zeros(60, np.float32)
        for s, e in high:
            a[s:e] = 1.0
        return a

    seqs = [
        # AGCCC inside the important run; ACCUCCC outside; GCCUCCC across the boundary
        Sequence("n1", seq_with((10, "AGCCC"), (30, "ACCUCCC"), (45, "GCCUCCC")), attention([(5, 20), (40, 48)]), "nucleus"),
        Sequence("n2", seq_with((10, "AGCCC"), (20, "AGCCC")), attention([(8, 16)]), "nucleus"),
        Sequence("c1", seq_with((50, "AGCCC")), attention([(0, 10)]), "cytoplasm"),
        Sequence("c2", seq_with(), attention([(0, 10)]), "cytoplasm"),
    ]
    result = find_motifs(seqs, ("nucleus", "cytoplasm"), Params(), rna_type="lncRNA")
    known = result.known.set_index(["motif", "class"])
    assert set(known.index.get_level_values(0)) == {"AGCCC", "RCCUCCC"}
    agccc_n = known.loc[("AGCCC", "nucleus")]
    assert (agccc_n["occurrences"], agccc_n["in_important"], agccc_n["in_other"], agccc_n["partial"]) == (3, 2, 1, 0)
    assert (agccc_n["with_motif"], agccc_n["sequences_important"], agccc_n["sequences_other"]) == (2, 2, 1)
    agccc_c = known.loc[("AGCCC", "cytoplasm")]
    assert (agccc_c["occurrences"], agccc_c["in_important"], agccc_c["in_other"], agccc_c["with_motif"]) == (1, 0, 1, 1)
    rcc = known.loc[("RCCUCCC", "nucleus")]
    assert (rcc["occurrences"], rcc["in_important"], rcc["in_other"], rcc["partial"]) == (2, 0, 1, 1)
    assert known.loc[("AGCCC", "all"), "occurrences"] == 4
    assert known.loc[("AGCCC", "nucleus"), "fraction_with_motif"] == 1.0


def test_user_known_motifs(planted, tmp_path, cli):
    table = tmp_path / "known.tsv"
    table.write_text("name\tiupac\nplanted\tGATGAACCTA\nnone\tCCCCCCCCCC\n")
    out = tmp_path / "o"
    r = cli("motifs", planted["att"], "-s", planted["tsv"], "-o", out, "--known-motifs", table, "-k", "8-10")
    assert r.exit_code == 0, r.stderr
    known = read_tsv(out / "known_motifs.tsv").set_index(["motif", "class"])
    assert known.loc[("planted", "nucleus"), "iupac"] == "GAUGAACCUA"
    assert known.loc[("planted", "nucleus"), "in_important"] == 80
    assert known.loc[("none", "all"), "occurrences"] == 0


def test_known_motif_list_from_test_data(test_data, planted, tmp_path, cli):
    out = tmp_path / "o"
    r = cli("motifs", planted["att"], "-s", planted["tsv"], "--known-motifs", test_data / "motifs-known.tsv",
            "--known", out, "-k", "9-10")
    assert r.exit_code == 0, r.stderr
    known = read_tsv(out)
    assert set(known["motif"]) == {"GAUGAA"}  # the circRNA motif of the list (the data are circRNA)
    bad = tmp_path / "bad.tsv"
    bad.write_text("name\tiupac\nx\tAGXC\n")
    r = cli("motifs", planted["att"], "-s", planted["tsv"], "--known-motifs", bad, "--known", tmp_path / "k2")
    assert r.exit_code == 1 and "record 'x': not an IUPAC nucleotide pattern" in r.stderr
    assert not (tmp_path / "k2").exists()


def test_merging_alignment():
    assert align("GAUGAACCUA", "GAUGAA", 2, 1) == 0
    assert align("GAUGAACCUA", "AACCU", 2, 1) == 4
    assert align("GAUGAACCUA", "AACCUG", 2, 1) == 4  # overhangs by one at the end, shift 1
    assert align("GAUGAACCUA", "UUUUUU", 2, 1) is None
    assert align("GAUGAA", "GAUCAA", 2, 1) == 0  # one mismatch, full overlap
    assert align("GAUGAA", "AUCAAG", 2, 1) is None  # shifted overlaps must match exactly


def test_truncated_and_partly_seen_sequences(tmp_path, cli):
    rng = np.random.default_rng(3)
    seq = "".join(rng.choice(list("ACGU"), 1500))
    fasta = write_fasta(tmp_path / "s.fa", {"long": seq, "short": seq[:300]})
    # RNA-FM truncates to 1022 nt; a model trained with --max-len 800 writes zeros beyond 800.
    a_long = np.zeros(1022, np.float32)
    a_long[:800] = rng.random(800) + 0.1
    att = write_attention(tmp_path / "a.npz", {"long": a_long, "short": rng.random(300) + 0.1},
                          dict(META, model_encoder="rna-fm", model_max_length=800))
    r = cli("motifs", att, "-s", fasta, "-o", tmp_path / "o", "--class-from", "none")
    assert r.exit_code == 0, r.stderr
    assert "1 sequence(s) are longer than the model saw" in r.stderr
    regions = read_tsv(tmp_path / "o" / "regions.tsv")
    assert regions[regions["id"] == "long"]["end"].max() <= 800
    # Without model_max_length, zeros are zero importance, not unseen positions: all 1022 analysed.
    att = write_attention(tmp_path / "z.npz", {"long": a_long, "short": rng.random(300) + 0.1},
                          dict(META, model_encoder="rna-fm"))
    data = load_inputs([att], fasta, class_from="none")
    assert [len(s.attention) for s in data.sequences] == [1022, 300]
    assert [len(s.seq) for s in data.sequences] == [1022, 300]
    # Without an encoder limit, a shorter attention is an error.
    att = write_attention(tmp_path / "b.npz", {"long": a_long, "short": rng.random(300)})
    r = cli("motifs", att, "-s", fasta, "-o", tmp_path / "p", "--class-from", "none")
    assert r.exit_code == 1
    assert "record 'long': attention has 1022 values but the sequence" in r.stderr


# ---- bad inputs: exit 1, one line naming file and record, nothing left behind ----


def _bad(cli, tmp_path, args, message):
    out = tmp_path / "out"
    r = cli("motifs", *args, "-o", out)
    line = one_error_line(r, "motifs")
    assert message in line, line
    assert not out.exists()
    assert leftovers(tmp_path) == []
    return line


@pytest.fixture
def small(tmp_path):
    rng = np.random.default_rng(4)
    seqs = {f"r{i}": "".join(rng.choice(list("ACGU"), 50)) for i in range(6)}
    atts = {k: rng.random(50).astype(np.float32) for k in seqs}
    return seqs, atts


def test_attention_id_not_in_sequences(cli, tmp_path, small):
    seqs, atts = small
    fasta = write_fasta(tmp_path / "s.fa", {k: v for k, v in seqs.items() if k != "r3"})
    att = write_attention(tmp_path / "a.npz", atts)
    line = _bad(cli, tmp_path, [att, "-s", fasta], "record 'r3': attention for a sequence that is not in")
    assert "a.npz" in line


def test_sequence_without_attention(cli, tmp_path, small):
    seqs, atts = small
    fasta = write_fasta(tmp_path / "s.fa", seqs)
    att = write_attention(tmp_path / "a.npz", {k: v for k, v in atts.items() if k != "r5"})
    line = _bad(cli, tmp_path, [att, "-s", fasta], "record 'r5': sequence has no attention")
    assert "s.fa" in line


def test_attention_length_differs(cli, tmp_path, small):
    seqs, atts = small
    atts["r2"] = atts["r2"][:49]
    fasta = write_fasta(tmp_path / "s.fa", seqs)
    att = write_attention(tmp_path / "a.npz", atts)
    _bad(cli, tmp_path, [att, "-s", fasta], "record 'r2': attention has 49 values but the sequence in")


def test_empty_sequences(cli, tmp_path, small):
    _, atts = small
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    att = write_attention(tmp_path / "a.npz", atts)
    _bad(cli, tmp_path, [att, "-s", empty], "empty input")


def test_empty_attention(cli, tmp_path, small):
    seqs, _ = small
    fasta = write_fasta(tmp_path / "s.fa", seqs)
    att = write_attention(tmp_path / "a.npz", {})
    _bad(cli, tmp_path, [att, "-s", fasta], "empty input: no sequences in the attention file")


def test_not_an_attention_file(cli, tmp_path, small):
    seqs, _ = small
    fasta = write_fasta(tmp_path / "s.fa", seqs)
    with EmbeddingWriter(tmp_path / "e.npz", {"dim": 1, "encoder": "one-hot"}) as w:
        w.add("r0", np.zeros((50, 1)))
    _bad(cli, tmp_path, [tmp_path / "e.npz", "-s", fasta], "not an rnaloc-attention NPZ")


def test_prediction_missing_and_label_missing(cli, tmp_path, small):
    seqs, atts = small
    fasta = write_fasta(tmp_path / "s.fa", seqs)
    att = write_attention(tmp_path / "a.npz", atts)
    pred = tmp_path / "p.tsv"
    pred.write_text("id\trna_type\tprediction\n" + "".join(f"{k}\tcircRNA\tnucleus\n" for k in list(seqs)[:-1]))
    _bad(cli, tmp_path, [att, "-s", fasta, "-p", pred], "record 'r5': no prediction for this sequence")
    _bad(cli, tmp_path, [att, "-s", fasta, "--class-from", "label"], "no 'label' column")


def test_usage_errors(cli, tmp_path, small):
    seqs, atts = small
    fasta = write_fasta(tmp_path / "s.fa", seqs)
    att = write_attention(tmp_path / "a.npz", atts)
    for args in ([att], [att, "-s", fasta, "--threshold", "2"], [att, "-s", fasta, "-k", "3-20"], []):
        r = cli("motifs", *args, "-o", tmp_path / "out")
        assert r.exit_code == 2, (args, r.stderr)
    assert not (tmp_path / "out").exists()


# ---- the direct path: a model and sequences ----


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from click.testing import CliRunner

    from rnaloc_tools.cli import cli as group

    folder = tmp_path_factory.mktemp("model")
    data = Path(__file__).resolve().parents[1] / "test-data" / "example-miRNA.tsv"
    runner = CliRunner()
    for args in (
        ["embed", data, "--encoder", "one-hot", "-o", folder / "e.npz"],
        ["train", data, folder / "e.npz", "-o", folder / "m.pt", "--folds", "0", "--epochs", "1",
         "--hparams", '{"lstm_layers": 1}', "--threads", "1"],
        ["export-onnx", folder / "m.pt", "-o", folder / "m.onnx"],
    ):
        r = runner.invoke(group, [str(a) for a in args], catch_exceptions=False)
        assert r.exit_code == 0, r.stderr
    return folder / "m.onnx", data


def test_model_and_sequences_directly_equals_predict_then_motifs(cli, tmp_path, tiny_model):
    model, data = tiny_model
    r = cli("motifs", "--model", model, data, "-o", tmp_path / "direct", "--min-support", "2")
    assert r.exit_code == 0, r.stderr
    r = cli("predict", data, "--model", model, "--attention", tmp_path / "a.npz", "-o", tmp_path / "p.tsv")
    assert r.exit_code == 0, r.stderr
    r = cli("motifs", tmp_path / "a.npz", "-s", data, "-p", tmp_path / "p.tsv", "-o", tmp_path / "files",
            "--min-support", "2")
    assert r.exit_code == 0, r.stderr
    for name in ("motifs.tsv", "regions.tsv", "known_motifs.tsv", "motifs.meme"):
        a = [ln for ln in (tmp_path / "direct" / name).read_text().splitlines() if not ln.startswith("#")]
        b = [ln for ln in (tmp_path / "files" / name).read_text().splitlines() if not ln.startswith("#")]
        assert a == b, name
    regions = read_tsv(tmp_path / "direct" / "regions.tsv")
    assert len(regions) > 0 and set(regions["class"]) <= {"extracellular", "intracellular"}
    known = read_tsv(tmp_path / "direct" / "known_motifs.tsv")
    assert "AGUGUU" in set(known["motif"])  # miRNA's known motifs



def test_meme_suite_reads_the_file_and_fimo_finds_the_planted_sites(planted_run, planted):
    """MEME's own C parser and FIMO (through pymemesuite, an optional test dependency)."""
    common = pytest.importorskip("pymemesuite.common")
    fimo = pytest.importorskip("pymemesuite.fimo")
    _, out = planted_run
    with common.MotifFile(str(out / "motifs.meme")) as mf:
        motif = mf.read()
        assert str(mf.alphabet) == "Alphabet.rna()"
        background = mf.background
    assert motif.accession == b"nucleus-1" and motif.width == len(PLANTED)
    seqs = [common.Sequence(s, name=k.encode()) for k, s in planted["seqs"].items()]
    pattern = fimo.FIMO(both_strands=False).score_motif(motif, seqs, background)
    hits = {(m.source.accession.decode(), m.start - 1) for m in pattern.matched_elements}
    assert set(planted["where"].items()) <= hits


def test_rerun_into_the_same_folder_deletes_nothing_and_names_earlier_logos(planted, tmp_path):
    # issue 11 item 6: a rerun into a folder an earlier run filled never deletes a file it did not
    # write (an earlier logo, one the user renamed, a non-logo); the earlier logos are named in a warning
    out = tmp_path / "out"
    first = run_motifs([planted["att"]], planted["tsv"], Outputs.in_folder(str(out)))
    assert first.motifs
    logos = sorted(p.name for p in (out / "logos").iterdir())
    assert logos
    os.rename(out / "logos" / logos[0], out / "logos" / "renamed-by-me.png")
    (out / "logos" / "mine.png").write_bytes(b"\x89PNG\r\n\x1a\n not a logo of rnaloc")
    (out / "logos" / "notes.txt").write_text("keep me\n")
    before = sorted(p.name for p in (out / "logos").iterdir())
    params = Params(alpha=1e-300)  # nothing is significant now
    import io
    import logging

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger("rnaloc").addHandler(handler)
    try:
        second = run_motifs([planted["att"]], planted["tsv"], Outputs.in_folder(str(out)), params=params)
    finally:
        logging.getLogger("rnaloc").removeHandler(handler)
    assert not second.motifs
    assert sorted(p.name for p in (out / "logos").iterdir()) == before
    assert (out / "logos" / "notes.txt").read_text() == "keep me\n"
    assert "earlier run" in stream.getvalue() and "renamed-by-me.png" in stream.getvalue()
    assert len(read_tsv(out / "motifs.tsv")) == 0


def test_two_outputs_on_stdout_is_a_usage_error(cli, planted):
    # the motif table, MEME file, regions and known-motif table would be interleaved on stdout
    r = cli("motifs", planted["att"], "-s", planted["tsv"], "--motifs", "-", "--regions", "-")
    assert r.exit_code == 2
    assert "--motifs and --regions" in r.stderr and r.stdout == ""
