#!/usr/bin/env bash
# Smoke-test a built rnaloc-tools image the way its users run it:
#
#   containers/smoke-test.sh ENGINE IMAGE [RUN-ARG...]
#
# ENGINE: docker or podman run as root (the tools run as SMOKE_UID:SMOKE_GID, default
# 4321:4321: not 1000, the image's default user, so that anything only uid 1000 may write
# shows up); rootless podman (as yourself, with --userns=keep-id); apptainer or singularity
# (IMAGE is the .sif; it runs as you, who must not be root). RUN-ARGs go to `ENGINE run`/`exec`.
#
# In IMAGE, with the root filesystem read-only (only a tmpfs /tmp is writable), no network,
# the repository's test-data/ mounted read-only at /test-data and an empty folder owned by
# that uid (mode 700) mounted at /data as the working directory, it runs `rnaloc --help`,
# `rnaloc -V`, predict (with attention), embed (one-hot) and motifs (with logos, so matplotlib
# runs). It then checks that each output is there, that everything in the folder belongs to
# that uid and gid, and that nothing else appeared in it (no cache, no home directory, no
# temporary file). Exit 0 when all holds, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ]; then
    echo "usage: containers/smoke-test.sh ENGINE IMAGE [RUN-ARG...]" >&2
    exit 2
fi
engine=$1
image=$2
shift 2
extra=("$@")
version=$(python3 -c 'import re; print(re.search(r"version=\"([^\"]+)\"", open("setup.py").read()).group(1))')

fail() {
    echo "smoke-test: FAILED: $*" >&2
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/rnaloc-smoke.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
chmod 700 "$work"
case "$engine" in
    docker|podman)
        if [ "$(id -u)" = 0 ]; then
            uid=${SMOKE_UID:-4321}
            gid=${SMOKE_GID:-4321}
            chown "$uid:$gid" "$work"
            user=(--user "$uid:$gid")
        else
            [ "$engine" = podman ] || fail "run docker as root, or use rootless podman"
            uid=$(id -u)
            gid=$(id -g)
            user=(--userns=keep-id --user "$uid:$gid")
        fi
        run() {
            "$engine" run --rm "${user[@]}" --read-only --tmpfs /tmp --network none \
                -v "$PWD/test-data:/test-data:ro" -v "$work:/data" -w /data \
                ${extra[@]+"${extra[@]}"} "$image" "$@"
        }
        ;;
    apptainer|singularity)
        [ "$(id -u)" != 0 ] || fail "run the $engine smoke test as a non-root user (the SIF runs as the caller)"
        uid=$(id -u)
        gid=$(id -g)
        # --containall: no home, no host /tmp or environment; the SIF itself is read-only
        run() {
            "$engine" exec --containall --no-home --net --network none \
                --bind "$PWD/test-data:/test-data:ro" --bind "$work:/data" --pwd /data \
                ${extra[@]+"${extra[@]}"} "$image" "$@"
        }
        ;;
    *)
        echo "smoke-test.sh: ENGINE must be docker, podman, apptainer or singularity, not '$engine'" >&2
        exit 2
        ;;
esac
echo "smoke-test: $image with $engine as uid $uid:$gid, read-only root, folder $work at /data"

step() {
    local what=$1
    shift
    local out
    if ! out=$(run "$@" 2>&1); then
        printf '%s\n' "$out" >&2
        fail "$what"
    fi
    printf '%s\n' "$out" | sed 's/^/    /'
    echo "smoke-test: ok: $what"
}

help=$(run rnaloc --help 2>&1) || { printf '%s\n' "$help" >&2; fail "rnaloc --help"; }
for tool in curate dedup split embed train export-onnx predict evaluate motifs; do
    printf '%s\n' "$help" | grep -q "^  $tool " || fail "rnaloc --help does not list $tool"
done
echo "smoke-test: ok: rnaloc --help lists the nine tools"
v=$(run rnaloc -V 2>&1) || fail "rnaloc -V: $v"
case "$v" in
    *"$version"*) echo "smoke-test: ok: rnaloc -V: $v" ;;
    *) fail "rnaloc -V says '$v', not version $version" ;;
esac
step "predict (bundled lncRNA model, attention)" \
    rnaloc predict /test-data/example-lncRNA.fa --rna-type lncRNA --attention attention.npz -o predictions.tsv
step "embed (one-hot)" \
    rnaloc embed /test-data/example-miRNA.fa --encoder one-hot -o embeddings.npz
step "motifs (with logos)" \
    rnaloc motifs /test-data/galaxy-mirna8-attention.npz --sequences /test-data/example-miRNA.tsv \
    --class-from label -k 5-6 --min-support 2 --alpha 1 -o motifs

# what must be there, and nothing else
expected="attention.npz
embeddings.npz
motifs
motifs/known_motifs.tsv
motifs/logos
motifs/motifs.meme
motifs/motifs.tsv
motifs/regions.tsv
predictions.tsv"
found=$(cd "$work" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort)
logos=$(printf '%s\n' "$found" | grep -c '^motifs/logos/[^/]*\.png$' || true)
[ "$logos" -ge 1 ] || fail "motifs wrote no logo"
rest=$(printf '%s\n' "$found" | grep -v '^motifs/logos/[^/]*\.png$' || true)
if [ "$rest" != "$(printf '%s\n' "$expected" | LC_ALL=C sort)" ]; then
    diff <(printf '%s\n' "$expected" | LC_ALL=C sort) <(printf '%s\n' "$rest") >&2 || true
    fail "the folder holds other files than the outputs (< expected, > found)"
fi
for f in predictions.tsv attention.npz embeddings.npz motifs/motifs.tsv; do
    [ -s "$work/$f" ] || fail "$f is empty"
done
grep -q $'^id\t' "$work/predictions.tsv" || fail "predictions.tsv has no header row"
others=$(find "$work" -mindepth 1 \( ! -uid "$uid" -o ! -gid "$gid" \) -printf '%U:%G %P\n')
[ -z "$others" ] || fail "files not owned by $uid:$gid: $others"
echo "smoke-test: ok: $(printf '%s\n' "$found" | wc -l) entries in /data ($logos logos), all owned by $uid:$gid, nothing else"
echo "smoke-test: PASSED: $image ($engine, uid $uid:$gid)"
