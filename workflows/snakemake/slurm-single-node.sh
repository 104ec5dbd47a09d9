#!/usr/bin/env bash
# Run the scale-out workflow through a real single-node SLURM on this machine (Debian/Ubuntu,
# as root): installs slurm-wlm and munge, starts munged, slurmctld and slurmd with a
# one-node partition "main", runs the Snakefile with the SLURM profile on the test data
# (one-hot, test-data/galaxy-mirna-onehot.onnx, shards of 3) and compares the merged
# predictions with one `rnaloc predict` run. Not part of CI (daemons, root, ~5 minutes).
#
# Usage: workflows/snakemake/slurm-single-node.sh [WORKDIR]   (needs rnaloc-tools in PYTHON (python3)
#        and snakemake + snakemake-executor-plugin-slurm on PATH, or SNAKEMAKE=/path/to/snakemake)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"
SNAKEMAKE=${SNAKEMAKE:-snakemake}
# the python where rnaloc-tools is installed, and its rnaloc (not a pyenv shim)
PYTHON=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')
RNALOC=$("$PYTHON" -c 'import os, sysconfig; print(os.path.join(sysconfig.get_path("scripts"), "rnaloc"))')

if ! command -v slurmctld >/dev/null; then
    apt-get install -y -qq slurm-wlm munge >/dev/null
fi
host=$(hostname -s)
cpus=$(nproc)
mkdir -p /etc/slurm /var/spool/slurmd /var/spool/slurmctld /var/log/slurm /run/munge
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=rnaloc-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus RealMemory=4000 State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
[ -s /etc/munge/munge.key ] || mungekey -c
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
sleep 3
sinfo

cat > "$WORK/config.yaml" <<CONF
input: $REPO/test-data/example-miRNA.fa
outdir: $WORK/out
shard_size: 3
model: $REPO/test-data/galaxy-mirna-onehot.onnx
rna_type: ""
encoder: one-hot
provider: cpu
rnaloc: $RNALOC
python: $PYTHON
CONF
(
    cd "$WORK"
    "$SNAKEMAKE" -s "$REPO/workflows/snakemake/Snakefile" --configfile config.yaml \
        --profile "$REPO/workflows/snakemake/profiles/slurm" --slurm-no-account \
        --slurm-logdir "$WORK/slurm-logs" --default-resources slurm_partition=main mem_mb=1000 runtime=30 \
        --set-resources embed:mem_mb=1000 predict:mem_mb=1000 embed:cpus_per_task=1 predict:cpus_per_task=1 \
        --set-threads embed=1 predict=1 -- all
)
RNALOC_NO_PROGRESS=1 "$RNALOC" predict "$REPO/test-data/example-miRNA.fa" \
    --model "$REPO/test-data/galaxy-mirna-onehot.onnx" --provider cpu -o "$WORK/single.tsv"
if diff <(grep -v '^#' "$WORK/out/predictions.tsv") <(grep -v '^#' "$WORK/single.tsv"); then
    echo "slurm-single-node: merged SLURM predictions equal a single run ($WORK/out/predictions.tsv)"
else
    echo "slurm-single-node: merged SLURM predictions differ from a single run" >&2
    exit 1
fi
