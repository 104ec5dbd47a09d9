#!/usr/bin/env bash
# Build the rnaloc-tools images from the repository root's sources, then smoke-test them.
#
#   containers/build.sh docker    [cpu|gpu] [BUILD-ARG...] [-- RUN-ARG...]  -> rnaloc-tools:0.1.0[-cuda]
#   containers/build.sh podman    [cpu|gpu] [BUILD-ARG...] [-- RUN-ARG...]  (rootless podman too;
#                                 add --isolation chroot where there are no user namespaces)
#   containers/build.sh apptainer [cpu|gpu] [BUILD-ARG...]   -> rnaloc-tools-0.1.0[-cuda].sif
#   containers/build.sh singularity ...                      (SingularityCE 4 or later, see the .def)
#   containers/build.sh conda     [BUILD-ARG...]             -> conda-build of containers/recipe
#
# Arguments after the variant go to the builder one word each, spaces kept; those after `--`
# go to `ENGINE run` in containers/smoke-test.sh (flags some hosts need, e.g. --ulimit):
#   containers/build.sh podman cpu --isolation chroot \
#       --build-arg "PIP_INDEX_URL=https://pypi.example.org/simple" -- --ulimit nofile=4096:4096
# Environment, split at white space (no spaces inside one argument): BUILD_ARGS (more builder
# arguments, before those on the command line), RUN_ARGS (more smoke-test run arguments),
# TAG (the image tag, default the version in setup.py).
# docker/podman: after the build, containers/smoke-test.sh runs the image as a uid other than
# 1000 on a read-only root filesystem; apptainer/singularity: `ENGINE test`, then the smoke test
# when not run as root (the SIF runs as the calling user).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: containers/build.sh docker|podman|apptainer|singularity [cpu|gpu] [BUILD-ARG...] [-- RUN-ARG...]" >&2
    echo "       containers/build.sh conda [BUILD-ARG...]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
engine=$1
shift
variant=cpu
if [ "$engine" != conda ] && [ $# -ge 1 ] && [ "$1" != -- ] && [ "${1#-}" = "$1" ]; then
    variant=$1
    shift
fi
case "$variant" in
    cpu) suffix="" ;;
    gpu) suffix="-cuda" ;;
    *) echo "build.sh: variant must be cpu or gpu, not '$variant'" >&2; exit 2 ;;
esac

# builder and run arguments: BUILD_ARGS / RUN_ARGS first, then the command line's (split at --)
build_extra=()
run_extra=()
read -r -a build_extra <<< "${BUILD_ARGS:-}"
read -r -a run_extra <<< "${RUN_ARGS:-}"
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    build_extra+=("$1")
    shift
done
if [ $# -gt 0 ]; then
    shift
    run_extra+=("$@")
fi

version=$(python3 -c 'import re; print(re.search(r"version=\"([^\"]+)\"", open("setup.py").read()).group(1))')
tag=${TAG:-$version}
# "${a[@]}" of an empty array is an unbound-variable error under set -u in bash < 4.4
case "$engine" in
    docker|podman)
        image="rnaloc-tools:${tag}${suffix}"
        "$engine" build ${build_extra[@]+"${build_extra[@]}"} -f containers/Dockerfile \
            --build-arg "VARIANT=$variant" -t "$image" .
        containers/smoke-test.sh "$engine" "$image" ${run_extra[@]+"${run_extra[@]}"}
        ;;
    apptainer|singularity)
        sif="rnaloc-tools-${tag}${suffix}.sif"
        "$engine" build ${build_extra[@]+"${build_extra[@]}"} --build-arg "VARIANT=$variant" \
            "$sif" containers/rnaloc-tools.def
        "$engine" test "$sif"
        if [ "$(id -u)" != 0 ]; then
            containers/smoke-test.sh "$engine" "$sif" ${run_extra[@]+"${run_extra[@]}"}
        else
            echo "build.sh: built $sif; run containers/smoke-test.sh $engine $sif as a non-root user" >&2
        fi
        ;;
    conda)
        if grep -q 'FILL-IN' containers/recipe/meta.yaml; then
            echo "build.sh: containers/recipe/meta.yaml still has FILL-IN values (the code's repository and the maintainers' GitHub handles); and rna-fm must be packaged first (see the recipe)" >&2
            exit 1
        fi
        conda build ${build_extra[@]+"${build_extra[@]}"} -c conda-forge -c bioconda containers/recipe
        ;;
    *)
        echo "build.sh: engine must be docker, podman, apptainer, singularity or conda, not '$engine'" >&2
        exit 2
        ;;
esac
