#!/usr/bin/env bash
# Fill a wheel folder for an offline image build (no index, only this folder):
#
#   containers/wheelhouse.sh DIR [cpu|gpu]
#   containers/build.sh podman cpu -v "$PWD/DIR:/wheels:ro" \
#       --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/wheels
#
# DIR then holds, as wheels for the image's platform (Linux x86_64, CPython 3.11, glibc 2.36):
# torch (the CPU build for cpu, PyPI's CUDA build for gpu) and everything torch needs, every
# dependency of rnaloc-tools (setup.py's install_requires, with theirs), onnxruntime (cpu) or
# onnxruntime-gpu (gpu) with theirs, and setuptools and wheel, which pip needs to build
# rnaloc-tools from the source copied into the image. It runs wherever pip runs: it fetches
# wheels for that platform, not for this machine. The versions of torch and ONNX Runtime are
# the Dockerfile's defaults (TORCH_VERSION, ONNXRUNTIME_VERSION).
#
# Environment: PYTHON (default python3); TORCH_CPU_INDEX (default the PyTorch CPU index;
# "" takes torch==VERSION+cpu from pip's usual index and find-links); TORCH_CUDA_INDEX (gpu;
# default "" = PyPI); pip's own PIP_INDEX_URL, PIP_FIND_LINKS ... as usual.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: containers/wheelhouse.sh DIR [cpu|gpu]" >&2
    exit 2
fi
dir=$1
variant=${2:-cpu}
python=${PYTHON:-python3}
dockerfile_default() {
    local value
    value=$(sed -n "s/^ARG $1=//p" containers/Dockerfile)
    [ -n "$value" ] || { echo "wheelhouse.sh: no 'ARG $1=' default in containers/Dockerfile" >&2; exit 1; }
    echo "$value"
}
torch_version=$(dockerfile_default TORCH_VERSION)
ort_version=$(dockerfile_default ONNXRUNTIME_VERSION)
case "$variant" in
    cpu)
        torch_index=${TORCH_CPU_INDEX-https://download.pytorch.org/whl/cpu}
        ort=onnxruntime
        torch_spec="torch==$torch_version"
        # without the PyTorch CPU index, the +cpu local version tells the CPU build from PyPI's
        [ -n "$torch_index" ] || torch_spec="torch==$torch_version+cpu"
        ;;
    gpu)
        torch_index=${TORCH_CUDA_INDEX-}
        ort=onnxruntime-gpu
        torch_spec="torch==$torch_version"
        ;;
    *) echo "wheelhouse.sh: variant must be cpu or gpu, not '$variant'" >&2; exit 2 ;;
esac

# the image's platform; pip accepts any of these manylinux tags on glibc 2.36
platform=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311)
for minor in $(seq 36 -1 5); do
    platform+=(--platform "manylinux_2_${minor}_x86_64")
done
platform+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)

mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "wheelhouse.sh: $torch_spec${torch_index:+ from $torch_index}"
if [ -n "$torch_index" ]; then
    "$python" -m pip download -q -d "$dir" "${platform[@]}" --index-url "$torch_index" "$torch_spec"
else
    "$python" -m pip download -q -d "$dir" "${platform[@]}" "$torch_spec"
fi
echo "wheelhouse.sh: rnaloc-tools' dependencies, $ort==$ort_version, setuptools, wheel"
# rnaloc-tools' own wheel (pure Python) names its dependencies; the image builds it from source
"$python" -m pip wheel -q --no-deps -w "$tmp" .
# the torch wheel just fetched, by its path: the index would offer PyPI's build of that version
torch_whl=$(find "$dir" -maxdepth 1 -name "torch-$torch_version*.whl" | head -n 1)
[ -n "$torch_whl" ] || { echo "wheelhouse.sh: no torch-$torch_version wheel in $dir" >&2; exit 1; }
"$python" -m pip download -q -d "$dir" "${platform[@]}" "$tmp"/rnaloc_tools-*.whl \
    "$torch_whl" "$ort==$ort_version" setuptools wheel
rm -f "$dir"/rnaloc_tools-*.whl
echo "wheelhouse.sh: $(find "$dir" -maxdepth 1 -name '*.whl' | wc -l) wheels, $(du -sh "$dir" | cut -f1) in $dir"
