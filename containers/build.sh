#!/usr/bin/env bash
# Build the rnaloc-tools images from the repository root's sources.
#
#   containers/build.sh docker  [cpu|gpu]   -> rnaloc-tools:0.1.0 / rnaloc-tools:0.1.0-cuda
#   containers/build.sh podman  [cpu|gpu]   (rootless podman; --isolation chroot where no
#                                            user namespaces are available)
#   containers/build.sh apptainer [cpu|gpu] -> rnaloc-tools-0.1.0[-cuda].sif
#   containers/build.sh conda               -> conda-build of containers/recipe (bioconda style)
#
# Environment: TAG (image tag, default 0.1.0), BUILD_ARGS (extra arguments for the builder).
set -euo pipefail
cd "$(dirname "$0")/.."

engine=${1:-docker}
variant=${2:-cpu}
version=$(python3 -c 'import re; print(re.search(r"version=\"([^\"]+)\"", open("setup.py").read()).group(1))')
tag=${TAG:-$version}
case "$variant" in
    cpu) suffix="" ;;
    gpu) suffix="-cuda" ;;
    *) echo "build.sh: variant must be cpu or gpu, not '$variant'" >&2; exit 2 ;;
esac
read -r -a extra <<< "${BUILD_ARGS:-}"

case "$engine" in
    docker|podman)
        "$engine" build "${extra[@]}" -f containers/Dockerfile --build-arg "VARIANT=$variant" \
            -t "rnaloc-tools:${tag}${suffix}" .
        "$engine" run --rm "rnaloc-tools:${tag}${suffix}" rnaloc --version
        ;;
    apptainer|singularity)
        "$engine" build "${extra[@]}" --build-arg "VARIANT=$variant" \
            "rnaloc-tools-${tag}${suffix}.sif" containers/rnaloc-tools.def
        "$engine" test "rnaloc-tools-${tag}${suffix}.sif"
        ;;
    conda)
        conda build "${extra[@]}" -c conda-forge -c bioconda containers/recipe
        ;;
    *)
        echo "build.sh: engine must be docker, podman, apptainer, singularity or conda, not '$engine'" >&2
        exit 2
        ;;
esac
