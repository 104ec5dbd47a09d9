"""`rnaloc motifs` streams: the chunked, external-memory run gives the in-memory analysis's outputs, byte for byte."""

import logging
import os

import numpy as np
import pandas as pd
import pytest
from conftest import leftovers, one_error_line
from test_motifs import META, planted_set, write_attention, write_dataset, write_fasta

from rnaloc_tools.motifs import KNOWN_MOTIFS, Outputs, Params, find_motifs, load_inputs, run_motifs, write_outputs
from rnaloc_tools.motifs import discover, kmercount, stream


def reference(att, seqs, out, predictions=None, class_from="auto", params=None):
    """The in-memory analysis (every sequence and its attention at once), written to ``out``."""
    params = params or Params()
    data = load_inputs([att], seqs, predictions, class_from)
    result = find_motifs(data.sequences, data.classes, params, KNOWN_MOTIFS, data.rna_type)
    os.makedirs(out / "logos")
    write_outputs(result, Outputs.in_folder(str(out)), params)
    return result


def files_of(folder):
    out = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = fh.read()
    return out


def assert_same_outputs(a, b):
    fa, fb = files_of(a), files_of(b)
    assert sorted(fa) == sorted(fb)
    for name in fa:
        assert fa[name] == fb[name], name


@pytest.fixture(scope="module")
def bigger(tmp_path_factory):
    """400 sequences, two planted motifs (one per class), attention peaked on them."""
    folder = tmp_path_factory.mktemp("bigger")
    seqs, atts, labels, _ = planted_set(seed=7, n=400, length=260, planted=160)
    rng = np.random.default_rng(3)
    for i, rid in enumerate(list(seqs)[200:360]):  # a second motif in the other class
        s = list(seqs[rid])
        p = int(rng.integers(5, 200))
        s[p : p + 9] = "CCAGUUCGA"
        seqs[rid] = "".join(s)
        atts[rid][p : p + 9] += 3
        labels[rid] = "cytoplasm"
    preds = pd.DataFrame({"id": list(seqs), "rna_type": "circRNA",
                          "prediction": [labels[k] if i % 7 else "nucleus" for i, k in enumerate(seqs)]})
    preds.to_csv(folder / "pred.tsv", sep="\t", index=False)
    return {
        "att": write_attention(folder / "att.npz", atts),
        "tsv": write_dataset(folder / "seqs.tsv", seqs, labels),
        "fasta": write_fasta(folder / "seqs.fa", seqs),
        "pred": folder / "pred.tsv",
        "seqs": seqs,
        "atts": atts,
        "folder": folder,
    }


@pytest.fixture
def on_disk(monkeypatch):
    """k > 5 counted in partition files, in many small partitions; k = 5 in dense slices; tests in slices."""
    monkeypatch.setattr(kmercount, "DENSE_MAX_K", 5)
    monkeypatch.setattr(kmercount, "PARTITION_ENTRIES", 2000)
    monkeypatch.setattr(kmercount, "_DENSE_SLICE", 100)
    monkeypatch.setattr(stream, "_TEST_ROWS", 50)


CASES = {
    "labels-rest": dict(seqs="tsv", class_from="label", params=dict(min_support=3)),
    "labels-other-class": dict(seqs="tsv", class_from="label", params=dict(background="other-class")),
    "predictions": dict(seqs="fasta", predictions="pred", params=dict(min_support=2, max_motifs=3)),
    "none-quantile": dict(seqs="fasta", class_from="none", params=dict(threshold="0.7", k_min=4, k_max=12)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_streaming_gives_the_in_memory_outputs(bigger, tmp_path, on_disk, case):
    spec = CASES[case]
    params = Params(**spec["params"])
    predictions = bigger[spec["predictions"]] if "predictions" in spec else None
    class_from = spec.get("class_from", "auto")
    seqs = bigger[spec["seqs"]]
    ref = reference(bigger["att"], seqs, tmp_path / "ref", predictions, class_from, params)
    assert ref.motifs, "the case must find motifs for the comparison to mean something"
    got = run_motifs([bigger["att"]], seqs, Outputs.in_folder(str(tmp_path / "stream")), predictions=predictions,
                     class_from=class_from, params=params, chunk_nt=600)  # ~3 sequences a chunk
    assert [m.name for m in got.motifs] == [m.name for m in ref.motifs]
    assert got.n_tests == ref.n_tests
    assert_same_outputs(tmp_path / "ref", tmp_path / "stream")


def test_streaming_keeps_only_the_rows_merging_looks_at(bigger, tmp_path, on_disk):
    """Of the test table, the streaming run keeps the best --max-cluster-kmers significant rows per
    class (with the q-values of the whole table) and the number of tests."""
    params = Params(max_cluster_kmers=40)
    ref = reference(bigger["att"], bigger["tsv"], tmp_path / "ref", class_from="label", params=params)
    got = run_motifs([bigger["att"]], bigger["tsv"], Outputs.in_folder(str(tmp_path / "s")), class_from="label",
                     chunk_nt=1000, params=params)
    t = ref.tested
    sig = t[(t["q"] <= params.alpha) & (t["enrichment"] > 1)]
    best = [sig[sig["class"] == c].sort_values(["p", "k", "support"], ascending=[True, False, False]).iloc[:40]
            for c in ("nucleus", "cytoplasm")]
    assert min(len(sig[sig["class"] == c]) for c in ("nucleus", "cytoplasm")) > 40  # a cut was made in both
    expected = pd.concat(best).sort_index().reset_index(drop=True)
    assert got.n_tests == len(t) > 10 * len(got.tested)
    pd.testing.assert_frame_equal(got.tested[expected.columns], expected, check_dtype=False)
    assert_same_outputs(tmp_path / "ref", tmp_path / "s")


def test_truncated_and_model_limited_attention(tmp_path, on_disk):
    """Attention of a truncating encoder (shorter than long sequences) and a model that saw 150 positions."""
    seqs, atts, labels, _ = planted_set(seed=5, n=150, length=240, planted=90)
    short = {k for i, k in enumerate(seqs) if i % 3 == 0}  # 180 nt: the whole sequence
    cut = {k: a[:180] if k in short else a[:200] for k, a in atts.items()}
    meta = dict(META, long_policy="truncate", max_length=200, model_max_length=190)
    att = write_attention(tmp_path / "att.npz", cut, meta)
    tsv = write_dataset(tmp_path / "s.tsv", {k: v[:180] if k in short else v for k, v in seqs.items()}, labels)
    params = Params(min_support=3)
    ref = reference(att, tsv, tmp_path / "ref", params=params)
    assert ref.motifs
    run_motifs([att], tsv, Outputs.in_folder(str(tmp_path / "s")), params=params, chunk_nt=500)
    assert_same_outputs(tmp_path / "ref", tmp_path / "s")


def test_empty_groups_repeat_the_sites_pass_in_the_greedy_order(bigger, tmp_path, monkeypatch):
    """A group of k-mers without a complete site gives no motif and does not count toward --max-motifs:
    the streaming run looks at as many groups as the in-memory one, in the same order (here it needs
    several passes over the chunks: no groups collected beyond those wanted)."""
    real = discover.trim_sites
    calls = []

    def even_widths_empty(counts, min_width):
        calls.append(len(counts))
        return None if len(counts) % 2 == 0 else real(counts, min_width)

    monkeypatch.setattr(discover, "trim_sites", even_widths_empty)
    monkeypatch.setattr(stream, "trim_sites", even_widths_empty)
    monkeypatch.setattr(stream, "EXTRA_GROUPS", 0)
    passes = []
    collect = stream._collect_sites
    monkeypatch.setattr(stream, "_collect_sites", lambda *a: passes.append(1) or collect(*a))
    params = Params(min_support=2, max_motifs=1, k_min=5, k_max=9)
    ref = reference(bigger["att"], bigger["tsv"], tmp_path / "ref", class_from="label", params=params)
    n_ref = len(calls)
    got = run_motifs([bigger["att"]], bigger["tsv"], Outputs.in_folder(str(tmp_path / "s")), class_from="label",
                     params=params, chunk_nt=2000)
    assert len(calls) - n_ref == n_ref  # the same groups looked at
    assert len(passes) > 1
    assert [m.name for m in got.motifs] == [m.name for m in ref.motifs] and got.motifs
    assert_same_outputs(tmp_path / "ref", tmp_path / "s")


def test_sequences_in_another_order_than_the_attention(bigger, tmp_path):
    items = list(bigger["seqs"].items())[::-1]
    fasta = write_fasta(tmp_path / "rev.fa", dict(items))
    reference(bigger["att"], bigger["fasta"], tmp_path / "ref", class_from="none")
    run_motifs([bigger["att"]], fasta, Outputs.in_folder(str(tmp_path / "s")), class_from="none", chunk_nt=900)
    assert_same_outputs(tmp_path / "ref", tmp_path / "s")


def test_large_k_counts_go_to_partition_files(bigger, tmp_path, monkeypatch):
    """k > DENSE_MAX_K is counted on disk, in the temporary folder, which is gone afterwards."""
    monkeypatch.setattr(kmercount, "PARTITION_ENTRIES", 5000)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    seen = []
    add = kmercount.PresenceCounts.add

    def spy(self, k, group, codes):
        seen.append((k, self.parts, sorted(os.listdir(self.folder))))
        return add(self, k, group, codes)

    monkeypatch.setattr(kmercount.PresenceCounts, "add", spy)
    logger, messages = logging.getLogger("rnaloc"), []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        run_motifs([bigger["att"]], bigger["tsv"], Outputs(motifs=str(tmp_path / "m.tsv")), class_from="label",
                   chunk_nt=5000, tmp_dir=str(tmp))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert max(parts for _, parts, _ in seen) > 1
    assert any(name.startswith("k15-") for *_, names in seen for name in names)
    assert any("bytes per nucleotide" in m for m in messages)
    assert os.listdir(tmp) == []


def test_an_error_in_the_last_record_leaves_no_output(bigger, tmp_path, cli):
    """The checks run before any output: a length mismatch in the last record, NaN in the last
    attention: one error line, exit 1, nothing written."""
    seqs, atts = dict(bigger["seqs"]), dict(bigger["atts"])
    last = list(seqs)[-1]
    fasta = write_fasta(tmp_path / "s.fa", dict(seqs, **{last: seqs[last] + "ACGU"}))
    out = tmp_path / "out"
    result = cli("motifs", bigger["att"], "-s", fasta, "-o", out, "--chunk-nt", "500")
    assert result.exit_code == 1
    line = one_error_line(result, "motifs")
    assert last in line and "attention has 260 values but the sequence" in line and "264 nucleotides" in line
    assert not out.exists()
    bad = dict(atts)
    bad[last] = bad[last].copy()
    bad[last][-1] = np.nan
    att = write_attention(tmp_path / "nan.npz", bad)
    result = cli("motifs", att, "-s", bigger["fasta"], "-o", out, "--chunk-nt", "500")
    assert result.exit_code == 1 and "NaN" in one_error_line(result, "motifs") and last in result.stderr
    assert not out.exists()
    assert not leftovers(tmp_path)


def test_the_cli_streams_with_a_chunk_budget(bigger, tmp_path, cli):
    ref = tmp_path / "ref"
    reference(bigger["att"], bigger["tsv"], ref, class_from="label")
    result = cli("motifs", bigger["att"], "-s", bigger["tsv"], "--class-from", "label", "-o", tmp_path / "s",
                 "--chunk-nt", "777", "--tmp-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    a, b = files_of(ref), files_of(tmp_path / "s")
    assert sorted(a) == sorted(b)
    for name in a:  # the provenance line names the command line, which differs
        strip = lambda data: b"\n".join(x for x in data.split(b"\n") if not x.startswith(b"#rnaloc motifs"))  # noqa: E731
        assert strip(a[name]) == strip(b[name]), name


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("way_out", ["success", "pairing-error", "model-error"])
def test_the_sequence_spool_is_closed_on_every_way_out(bigger, tmp_path, monkeypatch, way_out):
    """The spool of the sequences' letters is opened once and closed however run_motifs ends: after
    the analysis, when the checks fail, and when the model run (no attention given) fails."""
    import rnaloc_tools.motifs as motifs_module
    from rnaloc_tools.errors import InputError, RnalocError

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("no /proc/self/fd on this system")
    made = []

    class Spy(stream.SequenceIndex):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(stream, "SequenceIndex", Spy)
    attention, seqs, error = [bigger["att"]], bigger["tsv"], None
    if way_out == "pairing-error":
        seqs, error = write_fasta(tmp_path / "s.fa", dict(list(bigger["seqs"].items())[:5])), InputError
    elif way_out == "model-error":
        def fail(*args, **kwargs):
            raise RnalocError("the model failed")

        monkeypatch.setattr(motifs_module, "predict_attention", fail)
        attention, error = [], RnalocError
    before = _open_fds()
    run = lambda: run_motifs(attention, seqs, Outputs.in_folder(str(tmp_path / "out")),  # noqa: E731
                             class_from="label", rna_type="circRNA", chunk_nt=5000)
    if error is None:
        assert run().motifs
    else:
        try:
            run()
        except error:
            pass  # not pytest.raises: its record of the traceback would keep the attention store open
        else:
            pytest.fail(f"no {error.__name__}")
    assert len(made) == 1 and made[0]._fd is None
    import gc
    gc.collect()
    new = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in _open_fds() - before if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not {fd: path for fd, path in new.items() if "rnaloc-motifs-" in path}
