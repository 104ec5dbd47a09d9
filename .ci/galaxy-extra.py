#!/usr/bin/env python3
"""Job splitting and the .ga workflow, in the Galaxy that .ci/galaxy-test.sh started.

1. Splitting: `rnaloc_predict_split3` is galaxy/rnaloc_predict.xml with split_size="3"
   (galaxy-test.sh makes it), so 8 sequences become 3 tasks. Its merged predictions, from
   FASTA and from a dataset TSV, must equal one local `rnaloc predict` run on the same file
   (rows and header; '#' lines aside) and hold one header; Galaxy's log must show the split.
   A mixed table (galaxy-mixed.tsv: its parts hold different RNA types) routed to the bundled
   models must equal one local `rnaloc predict --all-columns` run.
   Asking a multi-task job for the attention NPZ must fail with the wrapper's message.
2. The workflow galaxy/workflows/*.ga, with its -tests.yml, via planemo test on this Galaxy.

Run with the planemo venv's python (bioblend).
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import time

from bioblend.galaxy import GalaxyInstance

SPLIT_TOOL = "rnaloc_predict_split3"


def body(text):
    return [line for line in text.splitlines() if not line.startswith("#")]


def wait_ok(gi, history_id, dataset_id, timeout=900):
    gi.datasets.wait_for_dataset(dataset_id, maxwait=timeout, check=False)
    return gi.datasets.show_dataset(dataset_id)


def run_split(gi, history_id, input_id, model_id, attention=False):
    """The split tool on ``input_id`` with the ONNX model ``model_id``, or (None) each row of a
    table by its rna_type with the bundled models."""
    inputs = {"input": {"src": "hda", "id": input_id}, "advanced|provider": "cpu"}
    if model_id is None:
        inputs["model|source"] = "table"
    else:
        inputs.update({"model|source": "history", "model|onnx": {"src": "hda", "id": model_id}})
    if attention:
        inputs["optional_outputs"] = ["attention"]
    result = gi.tools.run_tool(history_id, SPLIT_TOOL, inputs)
    job_id = result["jobs"][0]["id"]
    gi.jobs.wait_for_job(job_id, maxwait=900, check=False)
    outputs = {o["output_name"]: o["id"] for o in result["outputs"]}
    return job_id, outputs


def split_jobs(work):
    """How many jobs Galaxy's log says it split into more than one part (the test's job conf sets the
    part size, so the number of parts follows the example file's length)."""
    log = open(os.path.join(work, "galaxy.log"), errors="replace").read()
    return sum(int(n) > 1 for n in re.findall(r"do_split created (\d+) parts", log))


def check_splitting(gi, args, failures):
    repo = args.repo
    history = gi.histories.create_history("rnaloc job splitting")
    hid = history["id"]
    up = {}
    for name, ftype in (
        ("example-miRNA.fa", "fasta"),
        ("example-miRNA.tsv", "tabular"),
        ("galaxy-mixed.tsv", "tabular"),
        ("galaxy-mirna-onehot.onnx", "onnx"),
    ):
        r = gi.tools.upload_file(os.path.join(repo, "test-data", name), hid, file_type=ftype)
        up[name] = r["outputs"][0]["id"]
    for dataset_id in up.values():
        state = wait_ok(gi, hid, dataset_id)["state"]
        if state != "ok":
            failures.append(f"upload {dataset_id} ended {state}")
            return
    model = os.path.join(repo, "test-data", "galaxy-mirna-onehot.onnx")
    log_before = split_jobs(args.work)
    runs = (("example-miRNA.fa", up["galaxy-mirna-onehot.onnx"], ["--model", model]),
            ("example-miRNA.tsv", up["galaxy-mirna-onehot.onnx"], ["--model", model]),
            ("galaxy-mixed.tsv", None, ["--all-columns"]))  # parts of different RNA types
    for name, model_id, options in runs:
        start = time.time()
        job_id, outputs = run_split(gi, hid, up[name], model_id)
        job = gi.jobs.show_job(job_id, full_details=True)
        if job["state"] != "ok":
            failures.append(f"split predict on {name}: job {job['state']}: {job.get('stderr', '')[-2000:]}")
            continue
        merged = gi.datasets.download_dataset(outputs["output"], require_ok_state=False).decode()
        local = subprocess.run(
            [args.rnaloc, "predict", os.path.join(repo, "test-data", name), *options, "--provider", "cpu"],
            capture_output=True, text=True, check=True, env=dict(os.environ, RNALOC_NO_PROGRESS="1"),
        ).stdout
        headers = [line for line in body(merged) if line.startswith("id\t")]
        if body(merged) != body(local) or len(headers) != 1:
            failures.append(f"split predict on {name}: merged output differs from a single run:\n{merged}\n---\n{local}")
        else:
            print(f"galaxy-extra: split predict on {name}: {len(body(merged)) - 1} rows, one header, "
                  f"equal to a single run ({time.time() - start:.0f} s)")
    log_after = split_jobs(args.work)
    if log_after - log_before < len(runs):
        failures.append(f"Galaxy's log shows {log_after - log_before} jobs split into several parts, "
                        f"expected {len(runs)}")
    else:
        print(f"galaxy-extra: Galaxy's log: {log_after - log_before} jobs split into several tasks each")

    # The wrapper's guard: a task of a multi-task job that was asked for the attention exits 1
    # with a clear message. (Galaxy 26.1's task runner would mark the parent job ok, with the
    # failed tasks' parts missing; the wrapper's <stdio> regex on that message fails it.)
    job_id, _ = run_split(gi, hid, up["example-miRNA.fa"], up["galaxy-mirna-onehot.onnx"], attention=True)
    job = gi.jobs.show_job(job_id, full_details=True)
    stderr = job.get("stderr") or ""
    if job["state"] != "error":
        failures.append(f"split predict with attention: job state {job['state']}, expected error")
    if "attention NPZ and the plot cannot be merged" not in stderr:
        failures.append(f"split predict with attention: the guard message is missing ({job['state']}): {stderr[-1000:]}")
    else:
        print(f"galaxy-extra: split predict with attention: the tasks refuse (NPZ parts cannot be concatenated); "
              f"Galaxy's job state: {job['state']}")


def check_workflows(args, failures):
    flows = sorted(glob.glob(os.path.join(args.repo, "galaxy", "workflows", "*.ga")))
    for flow in flows:
        start = time.time()
        out = os.path.join(args.work, "results", os.path.basename(flow) + ".json")
        cmd = [
            os.path.join(os.path.dirname(sys.executable), "planemo"), "test", "--engine", "external_galaxy",
            "--galaxy_url", args.url, "--galaxy_user_key", args.key, "--galaxy_admin_key", args.admin_key,
            "--no_shed_install", "--test_output", out[:-5] + ".html", "--test_output_json", out, flow,
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        tail = (r.stdout + r.stderr)[-3000:]
        if r.returncode != 0:
            failures.append(f"workflow {os.path.basename(flow)} failed in Galaxy:\n{tail}")
        else:
            print(f"galaxy-extra: workflow {os.path.basename(flow)} ran and passed its tests "
                  f"({time.time() - start:.0f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True, help="a user's API key")
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--rnaloc", required=True, help="the rnaloc executable, for the single-run reference")
    parser.add_argument("--skip-split", action="store_true")
    parser.add_argument("--skip-workflow", action="store_true")
    args = parser.parse_args()
    gi = GalaxyInstance(args.url, key=args.key)
    failures = []
    if not args.skip_split:
        check_splitting(gi, args, failures)
    if not args.skip_workflow:
        check_workflows(args, failures)
    for f in failures:
        print("galaxy-extra: FAILED:", f, file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
