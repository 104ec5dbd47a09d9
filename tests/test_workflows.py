"""Scale-out and Galaxy packaging checks (fast).

- workflows/snakemake: the sharded run (--cores 2) gives the same predictions as one
  `rnaloc predict` on the whole file, and its merged embeddings equal one `rnaloc embed`;
  its shard/merge scripts on their own.
- galaxy/: every command has a wrapper, and every ``argument="--x"`` a wrapper uses is an
  option of that command (wrappers never guess options); the .ga workflow names real tools.

The Snakemake test needs snakemake (``pip install snakemake snakemake-executor-plugin-slurm``);
it is skipped, saying so, when it is missing. The real-Galaxy tests live in .ci/galaxy-test.sh.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from rnaloc_tools.cli import COMMANDS
from rnaloc_tools.cli import cli as rnaloc_group
from rnaloc_tools.formats.npz import ENCODER_KEYS, EmbeddingStore

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflows" / "snakemake" / "Snakefile"
SCRIPTS = REPO / "workflows" / "snakemake" / "scripts"
GALAXY = REPO / "galaxy"
RNALOC = Path(sysconfig.get_path("scripts")) / "rnaloc"
MODEL = REPO / "test-data" / "galaxy-mirna-onehot.onnx"


def _snakemake():
    if os.environ.get("RNALOC_SNAKEMAKE"):
        return [os.environ["RNALOC_SNAKEMAKE"]]
    if importlib.util.find_spec("snakemake") is not None:
        return [sys.executable, "-m", "snakemake"]
    if shutil.which("snakemake"):
        return [shutil.which("snakemake")]
    return None


def _body(path):
    """The header row and the rows: what a merged table must share with a single run."""
    return [line for line in Path(path).read_text().splitlines() if not line.startswith("#")]


def _run(cmd, **kw):
    env = dict(os.environ, RNALOC_NO_PROGRESS="1")
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, **kw)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def _records(fasta):
    return fasta.read_text().count(">")


@pytest.fixture(scope="module")
def many_fasta(tmp_path_factory):
    """Every example sequence of the three RNA types (38 records in 6 shards of 7; counted, not assumed)."""
    out = tmp_path_factory.mktemp("fa") / "all.fa"
    out.write_text("".join((REPO / "test-data" / f"example-{t}.fa").read_text() for t in ("miRNA", "lncRNA", "circRNA")))
    return out


def test_snakemake_shards_merge_like_a_single_run(tmp_path, many_fasta):
    snakemake = _snakemake()
    if snakemake is None:
        pytest.skip("snakemake is not installed (pip install snakemake snakemake-executor-plugin-slurm)")
    if not RNALOC.exists():
        pytest.skip(f"{RNALOC} not found: install the package (pip install -e .)")
    config = tmp_path / "config.yaml"
    out = tmp_path / "out"
    config.write_text(
        "\n".join(
            [
                f"input: '{many_fasta}'",
                f"outdir: '{out}'",
                "shard_size: 7",
                f"model: '{MODEL}'",
                "rna_type: ''",
                "encoder: one-hot",
                "provider: cpu",
                "attention: true",
                f"rnaloc: '{RNALOC}'",
                f"python: '{sys.executable}'",
            ]
        )
        + "\n"
    )
    _run(snakemake + ["-s", SNAKEFILE, "--configfile", config, "--cores", "2", "--quiet", "rules", "--", "all", "merged_embeddings"],
         cwd=tmp_path)
    shards = sorted((out / "shards").glob("shard-*.fa"))
    assert len(shards) == -(-_records(many_fasta) // 7) > 1  # 7 sequences per shard

    single = tmp_path / "single.tsv"
    _run([RNALOC, "predict", many_fasta, "--model", MODEL, "--provider", "cpu", "-o", single])
    assert _body(out / "predictions.tsv") == _body(single)
    assert len(_body(single)) == 1 + _records(many_fasta)  # the header and one row per record

    single_npz = tmp_path / "single.npz"
    _run([RNALOC, "embed", many_fasta, "--encoder", "one-hot", "-o", single_npz])
    one, merged = EmbeddingStore(single_npz), EmbeddingStore(out / "embeddings.npz")
    sharded = EmbeddingStore(sorted((out / "embeddings").glob("shard-*.npz")))
    assert one.ids == merged.ids == sharded.ids
    for key in ENCODER_KEYS:
        assert merged.meta.get(key) == one.meta.get(key)
    for rid in one.ids:
        np.testing.assert_array_equal(merged.get(rid), one.get(rid))
        np.testing.assert_array_equal(sharded.get(rid), one.get(rid))
    # attention shards read as one store, covering every sequence in order
    attention = EmbeddingStore(sorted((out / "attention").glob("shard-*.npz")), format_name="rnaloc-attention")
    assert attention.ids == one.ids


def test_shard_fasta_keeps_order_and_records(tmp_path, many_fasta):
    _run([sys.executable, SCRIPTS / "shard_fasta.py", many_fasta, tmp_path / "s", "--size", "6"])
    parts = sorted((tmp_path / "s").glob("shard-*.fa"))
    assert [p.name for p in parts] == [f"shard-{i:05d}.fa" for i in range(-(-_records(many_fasta) // 6))]
    assert "".join(p.read_text() for p in parts) == many_fasta.read_text()


def test_shard_fasta_rejects_duplicate_ids(tmp_path):
    fa = tmp_path / "dup.fa"
    fa.write_text(">a\nACGU\n>b\nACGU\n>a\nGGGG\n")
    r = subprocess.run([sys.executable, SCRIPTS / "shard_fasta.py", fa, tmp_path / "s", "--size", "1"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "duplicate id 'a'" in r.stderr


def test_merge_predictions_one_header_and_checks(tmp_path):
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    a.write_text("#rnaloc predict 0.1.0: x\nid\tp\nr1\t0.1\nr2\t0.2\n")
    b.write_text("#rnaloc predict 0.1.0: y\nid\tp\nr3\t0.3\n")
    out = tmp_path / "m.tsv"
    _run([sys.executable, SCRIPTS / "merge_predictions.py", out, a, b])
    assert _body(out) == ["id\tp", "r1\t0.1", "r2\t0.2", "r3\t0.3"]
    b.write_text("id\tq\nr3\t0.3\n")
    r = subprocess.run([sys.executable, SCRIPTS / "merge_predictions.py", tmp_path / "x.tsv", a, b],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "header differs" in r.stderr
    b.write_text("id\tp\nr1\t0.3\n")
    r = subprocess.run([sys.executable, SCRIPTS / "merge_predictions.py", tmp_path / "x.tsv", a, b],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "also in an earlier shard" in r.stderr
    assert not (tmp_path / "x.tsv").exists()


def test_merged_predictions_get_the_usual_permissions(tmp_path):
    # written through mkstemp (0600): the merged table must be readable as any file the user writes
    a = tmp_path / "a.tsv"
    a.write_text("id\tp\nr1\t0.1\n")
    out = tmp_path / "m.tsv"
    r = subprocess.run(["sh", "-c", 'umask 022 && exec "$0" "$@"', sys.executable,
                        SCRIPTS / "merge_predictions.py", out, a], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (out.stat().st_mode & 0o777) == 0o644


def _wrappers():
    return {p.stem: ET.parse(p).getroot() for p in sorted(GALAXY.glob("rnaloc_*.xml"))}


def _options(command):
    """The long options of `rnaloc COMMAND`, from Click itself."""
    import click

    ctx = click.Context(rnaloc_group)
    cmd = rnaloc_group.get_command(ctx, command)
    return {opt for p in cmd.params for opt in p.opts + p.secondary_opts if opt.startswith("--")}


def test_every_command_has_a_galaxy_wrapper():
    import click

    present = rnaloc_group.list_commands(click.Context(rnaloc_group))
    missing = [c for c in present if "rnaloc_" + c.replace("-", "_") not in _wrappers()]
    assert not missing, f"commands without a Galaxy wrapper in galaxy/: {missing}"


@pytest.mark.parametrize("command", COMMANDS)
def test_galaxy_arguments_are_real_options(command):
    root = _wrappers().get("rnaloc_" + command.replace("-", "_"))
    if root is None:
        pytest.skip(f"no wrapper for {command}")
    import click

    if command not in rnaloc_group.list_commands(click.Context(rnaloc_group)):
        pytest.skip(f"rnaloc {command} is not in this checkout")
    options = _options(command)
    used = {el.get("argument") for el in root.iter("param") if el.get("argument")}
    assert used, f"{command}: no argument= attributes"
    unknown = sorted(a for a in used if a not in options)
    assert not unknown, f"galaxy/rnaloc_{command}.xml uses options rnaloc {command} lacks: {unknown}"
    assert root.get("version") == "@TOOL_VERSION@+galaxy@VERSION_SUFFIX@"
    assert root.find("command").get("detect_errors") == "exit_code"


def test_galaxy_macros_version_is_the_package_version():
    from rnaloc_tools import __version__

    tokens = {t.get("name"): (t.text or "").strip() for t in ET.parse(GALAXY / "macros.xml").getroot().iter("token")}
    assert tokens["@TOOL_VERSION@"] == __version__


def test_galaxy_workflow_steps_are_our_tools():
    flows = sorted(GALAXY.glob("**/*.ga"))
    if not flows:
        pytest.skip("no .ga workflow in galaxy/")
    ids = set(_wrappers())
    for flow in flows:
        steps = json.loads(flow.read_text())["steps"].values()
        tools = [s["tool_id"] for s in steps if s["type"] == "tool"]
        assert tools and set(tools) <= ids, f"{flow.name}: unknown tools {set(tools) - ids}"
