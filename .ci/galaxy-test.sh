#!/usr/bin/env bash
# Test the Galaxy wrappers in galaxy/ for real:
#   1. planemo lint (no network checks) on every tool XML;
#   2. a Galaxy server installed from PyPI (galaxy-web-apps + galaxy-app + its web client
#      galaxy-web-client, in a venv of its own), started on 127.0.0.1 with conda off and
#      the project's `rnaloc` on the jobs' PATH, then every wrapper's <tests> with
#      galaxy-tool-test;
#   3. job splitting (<parallelism>) and the .ga workflow, run in that Galaxy;
#   4. the forms in a real browser (.ci/galaxy-browser.py: headless Debian chromium driven
#      by Selenium): register, upload the example FASTA, run predict and motifs through
#      their forms, check the result tables in the page. Screenshots on failure go to
#      $GALAXY_TEST_OUTPUT/browser (default ci-output/ in the repository).
#
# Usage: .ci/galaxy-test.sh            (from anywhere; needs `rnaloc` installed in the
#                                       python on PATH, i.e. `pip install -e .[test]` first)
# Environment:
#   RNALOC_SKIP_GALAXY=1   skip everything (local runs); CI leaves it unset
#   GALAXY_VENV            Galaxy's venv (default /opt/galaxy-venv; created when missing)
#   PLANEMO_VENV           planemo + galaxy-tool-util venv (default /opt/planemo-venv)
#   GALAXY_PORT            port on 127.0.0.1 (default: a free one)
#   GALAXY_TEST_WORK       work folder (default: a new temporary one, removed at the end)
#   GALAXY_TEST_TOOLS      space-separated tool ids to test (default: all in galaxy/)
#   GALAXY_TEST_SKIP_WORKFLOW=1, GALAXY_TEST_SKIP_SPLIT=1, GALAXY_TEST_SKIP_BROWSER=1
#                          skip those parts
#   GALAXY_TEST_OUTPUT     where the browser test's screenshots go (default ci-output/)
#   GALAXY_TEST_SERVE=1    start Galaxy, print its URL and keep it running (no tests):
#                          look at the forms yourself (user tester@example.org, testpass123)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

if [ "${RNALOC_SKIP_GALAXY:-0}" = 1 ]; then
    echo "galaxy-test: skipped (RNALOC_SKIP_GALAXY=1)"
    exit 0
fi

GALAXY_VERSION=26.1.2
GALAXY_VENV=${GALAXY_VENV:-/opt/galaxy-venv}
PLANEMO_VENV=${PLANEMO_VENV:-/opt/planemo-venv}
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
START=$(date +%s)

log() { printf 'galaxy-test [%4ss]: %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

# --- the project's rnaloc (its own interpreter, not a pyenv shim) --------------------
RNALOC_BIN=$("$PYTHON" -c 'import os, sysconfig; print(os.path.join(sysconfig.get_path("scripts"), "rnaloc"))')
if [ ! -x "$RNALOC_BIN" ]; then
    echo "galaxy-test: $RNALOC_BIN not found: install the package first (pip install -e .)" >&2
    exit 1
fi

# --- venvs ---------------------------------------------------------------------------
# galaxy-web-apps/galaxy-app serve the API only: without galaxy-web-client the page stays
# blank (/static/dist/*.js is 404), which API tests never notice.
if [ ! -x "$GALAXY_VENV/bin/galaxy-web" ] || [ ! -x "$GALAXY_VENV/bin/galaxy-web-client-install" ]; then
    log "installing galaxy-web-apps/galaxy-app/galaxy-web-client $GALAXY_VERSION into $GALAXY_VENV"
    [ -x "$GALAXY_VENV/bin/pip" ] || "$PYTHON" -m venv "$GALAXY_VENV"
    nice -n 10 "$GALAXY_VENV/bin/pip" install -q "galaxy-web-apps==$GALAXY_VERSION" "galaxy-app==$GALAXY_VERSION" \
        "galaxy-web-client==$GALAXY_VERSION"
fi
if [ ! -x "$PLANEMO_VENV/bin/planemo" ] || [ ! -x "$PLANEMO_VENV/bin/galaxy-tool-test" ] ||
    ! "$PLANEMO_VENV/bin/python" -c 'import selenium' 2>/dev/null; then
    log "installing planemo, galaxy-tool-util and selenium into $PLANEMO_VENV"
    [ -x "$PLANEMO_VENV/bin/pip" ] || "$PYTHON" -m venv "$PLANEMO_VENV"
    nice -n 10 "$PLANEMO_VENV/bin/pip" install -q planemo "galaxy-tool-util==$GALAXY_VERSION" edam-ontology bioblend \
        "selenium>=4.20"
fi
# The browser test's browser: Debian's chromium and its driver (same version, no download).
if [ "${GALAXY_TEST_SKIP_BROWSER:-0}" != 1 ] && [ "${GALAXY_TEST_SERVE:-0}" != 1 ] &&
    { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; }; then
    log "installing Debian's chromium and chromium-driver"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# --- 1. lint -----------------------------------------------------------------------
# BioToolsValid queries the bio.tools API (network); EDAM terms are checked offline
# against the edam-ontology package. --urls/--doi (network) stay off.
log "planemo lint"
mapfile -t TOOLS < <(find galaxy -maxdepth 1 -name 'rnaloc_*.xml' | sort)
"$PLANEMO_VENV/bin/planemo" lint --skip BioToolsValid --fail_level warn "${TOOLS[@]}"
if ls galaxy/workflows/*.ga >/dev/null 2>&1; then
    "$PLANEMO_VENV/bin/planemo" workflow_lint --fail_level warn galaxy/workflows/*.ga
fi

# --- 2. a Galaxy server ------------------------------------------------------------
if [ -n "${GALAXY_TEST_WORK:-}" ]; then
    WORK=$GALAXY_TEST_WORK
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/rnaloc-galaxy.XXXXXX")
fi
PORT=${GALAXY_PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
URL="http://127.0.0.1:$PORT"
API_KEY=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')
GALAXY_PID=
cleanup() {
    if [ -n "$GALAXY_PID" ]; then
        kill "$GALAXY_PID" 2>/dev/null || true
        wait "$GALAXY_PID" 2>/dev/null || true
    fi
    if [ -z "${GALAXY_TEST_WORK:-}" ] && [ "${GALAXY_TEST_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# Galaxy from packages looks for extract_dataset_parts.sh (job splitting) two folders
# above its working directory: run it from $WORK/run/galaxy and put the script in $WORK.
mkdir -p "$WORK/run/galaxy" "$WORK/jobbin" "$WORK/tool-data"
cat > "$WORK/extract_dataset_parts.sh" <<'EOF'
#!/bin/sh
# FASTA and tabular parts are written by the splitter itself: nothing to extract.
exit 0
EOF
chmod +x "$WORK/extract_dataset_parts.sh"
# Only `rnaloc` goes on the jobs' PATH (not its python, which would shadow Galaxy's).
ln -sf "$RNALOC_BIN" "$WORK/jobbin/rnaloc"

cp "$REPO/test-data/galaxy-not-rnafm.pth" "$WORK/tool-data/galaxy-not-rnafm.pth"
printf 'rnafm_test\tnot a checkpoint (tests)\t%s\n' "$WORK/tool-data/galaxy-not-rnafm.pth" > "$WORK/tool-data/rnafm_weights.loc"
cat > "$WORK/tool_data_table_conf.xml" <<EOF
<tables>
    <table name="rnafm_weights" comment_char="#" allow_duplicate_entries="False">
        <columns>value, name, path</columns>
        <file path="$WORK/tool-data/rnafm_weights.loc"/>
    </table>
</tables>
EOF
# A copy of the predict wrapper that splits into parts of 3 sequences, to show job
# splitting and merging on tiny inputs (the real wrapper splits at 1000).
mkdir -p "$WORK/splittools"
ln -sf "$REPO/galaxy/macros.xml" "$WORK/splittools/macros.xml"
ln -sf "$REPO/galaxy/help_macros.xml" "$WORK/splittools/help_macros.xml"
sed -e 's/id="rnaloc_predict"/id="rnaloc_predict_split3"/' -e 's/name="rnaloc predict"/name="rnaloc predict (split test)"/' \
    -e 's/split_size="1000"/split_size="3"/' galaxy/rnaloc_predict.xml > "$WORK/splittools/rnaloc_predict_split3.xml"
grep -q 'split_size="3"' "$WORK/splittools/rnaloc_predict_split3.xml"
cat > "$WORK/tool_conf.xml" <<EOF
<?xml version="1.0"?>
<toolbox tool_path="$REPO/galaxy">
    <section id="rnaloc" name="RNA localization (rnaloc-tools)">
$(for t in "${TOOLS[@]}"; do printf '        <tool file="%s"/>\n' "$(basename "$t")"; done)
    </section>
    <section id="rnaloc_ci" name="rnaloc CI">
        <tool file="$WORK/splittools/rnaloc_predict_split3.xml"/>
    </section>
</toolbox>
EOF
SLOTS=${GALAXY_SLOTS_PER_JOB:-1}
cat > "$WORK/galaxy.yml" <<EOF
gravity:
  galaxy_root: $WORK/run/galaxy
galaxy:
  data_dir: $WORK/data
  database_connection: sqlite:///$WORK/data/universe.sqlite?isolation_level=IMMEDIATE
  database_auto_migrate: true
  file_path: $WORK/data/objects
  new_file_path: $WORK/data/tmp
  job_working_directory: $WORK/data/jobs
  tool_config_file: $WORK/tool_conf.xml
  shed_tool_config_file: $WORK/data/shed_tool_conf.xml
  tool_data_table_config_path: $WORK/tool_data_table_conf.xml
  tool_data_path: $WORK/tool-data
  tool_dependency_dir: $WORK/data/deps
  conda_auto_init: false
  conda_auto_install: false
  dependency_resolvers: []
  enable_mulled_containers: false
  admin_users: admin@example.org
  bootstrap_admin_api_key: $API_KEY
  id_secret: $API_KEY
  allow_path_paste: true
  allow_user_creation: true
  use_tasked_jobs: true
  local_task_queue_workers: 2
  cleanup_job: onsuccess
  check_migrate_tools: false
  watch_tools: 'false'
  enable_celery_tasks: false
  metadata_strategy: directory
  biotools_use_api: false
  galaxy_infrastructure_url: $URL
  job_config:
    runners:
      local:
        load: galaxy.jobs.runners.local:LocalJobRunner
        workers: 3
      tasks:
        load: galaxy.jobs.runners.tasks:TaskRunner
        workers: 2
    execution:
      default: local
      environments:
        local:
          runner: local
          tasks: true
          env:
            - name: GALAXY_SLOTS
              value: '$SLOTS'
            - name: PATH
              value: '$WORK/jobbin:\$PATH'
            - name: RNALOC_NO_PROGRESS
              value: '1'
EOF

log "starting Galaxy on $URL (work folder $WORK)"
(
    cd "$WORK/run/galaxy"
    exec nice -n 5 "$GALAXY_VENV/bin/galaxy-web" --config "$WORK/galaxy.yml" --bind "127.0.0.1:$PORT"
) > "$WORK/galaxy.log" 2>&1 &
GALAXY_PID=$!
for _ in $(seq 1 180); do
    if curl -fsS "$URL/api/version" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$GALAXY_PID" 2>/dev/null; then
        tail -n 60 "$WORK/galaxy.log" >&2
        echo "galaxy-test: Galaxy exited during startup (log above)" >&2
        exit 1
    fi
    sleep 2
done
if ! curl -fsS "$URL/api/version" >/dev/null; then
    tail -n 60 "$WORK/galaxy.log" >&2
    echo "galaxy-test: Galaxy did not answer on $URL within 6 minutes" >&2
    exit 1
fi
log "Galaxy $(curl -fsS "$URL/api/version") is up"

# A regular user for the tests (the bootstrap key is an admin key without a user).
USER_KEY=$("$PLANEMO_VENV/bin/python" - "$URL" "$API_KEY" <<'EOF'
import sys
from bioblend.galaxy import GalaxyInstance
gi = GalaxyInstance(sys.argv[1], key=sys.argv[2])
users = gi.users.get_users(f_email="tester@example.org")
user = users[0] if users else gi.users.create_local_user("tester", "tester@example.org", "testpass123")
print(gi.users.get_or_create_user_apikey(user["id"]))
EOF
)

if [ "${GALAXY_TEST_SERVE:-0}" = 1 ]; then
    log "serving $URL (user tester@example.org, password testpass123); Ctrl-C stops it"
    wait "$GALAXY_PID"
    exit 0
fi

# --- every wrapper's tests -----------------------------------------------------------
FAILED=0
mkdir -p "$WORK/results"
TOOL_IDS=${GALAXY_TEST_TOOLS:-$(for t in "${TOOLS[@]}"; do basename "$t" .xml; done)}
for tool in $TOOL_IDS; do
    log "galaxy-tool-test $tool"
    if ! "$PLANEMO_VENV/bin/galaxy-tool-test" -u "$URL" -k "$USER_KEY" -a "$API_KEY" -t "$tool" \
        --test-data "$REPO/galaxy/test-data" --parallel-tests 3 --history-per-test-case --with-reference-data \
        -j "$WORK/results/$tool.json" -o "$WORK/results/$tool" --download-attempts 3 2>&1 |
        tail -n 40; then
        FAILED=1
    fi
    "$PYTHON" - "$WORK/results/$tool.json" <<'EOF' || FAILED=1
import json, sys
tests = json.load(open(sys.argv[1]))["tests"]
bad = [t for t in tests if t["data"]["status"] != "success"]
print(f"{len(tests) - len(bad)}/{len(tests)} tests passed")
for t in bad:
    print("FAILED:", t["id"], (t["data"].get("problem_log") or "")[:2000])
sys.exit(1 if bad or not tests else 0)
EOF
done

# --- 3. job splitting and the workflow ---------------------------------------------------
EXTRA=()
[ "${GALAXY_TEST_SKIP_SPLIT:-0}" = 1 ] && EXTRA+=(--skip-split)
[ "${GALAXY_TEST_SKIP_WORKFLOW:-0}" = 1 ] && EXTRA+=(--skip-workflow)
log "job splitting and the workflow"
"$PLANEMO_VENV/bin/python" .ci/galaxy-extra.py --url "$URL" --key "$USER_KEY" --admin-key "$API_KEY" \
    --repo "$REPO" --work "$WORK" --rnaloc "$RNALOC_BIN" "${EXTRA[@]}" || FAILED=1

# --- 4. the forms in a real browser -----------------------------------------------------
if [ "${GALAXY_TEST_SKIP_BROWSER:-0}" != 1 ]; then
    OUTPUT=${GALAXY_TEST_OUTPUT:-$REPO/ci-output}
    SHOTS="$OUTPUT/browser"
    rm -rf "$SHOTS"
    log "the predict and motifs forms in headless Chromium"
    if "$PLANEMO_VENV/bin/python" .ci/galaxy-browser.py --url "$URL" --repo "$REPO" --rnaloc "$RNALOC_BIN" \
        --shots "$WORK/browser"; then
        log "browser test passed"
    else
        FAILED=1
        mkdir -p "$SHOTS" && cp -r "$WORK/browser/." "$SHOTS/"
        echo "galaxy-test: browser test FAILED; screenshots and the failing page in $SHOTS" >&2
    fi
fi

if [ "$FAILED" != 0 ]; then
    echo "galaxy-test: FAILED (Galaxy log: $WORK/galaxy.log)" >&2
    tail -n 30 "$WORK/galaxy.log" >&2
    GALAXY_TEST_KEEP=1
    exit 1
fi
log "all Galaxy tests passed"
