#!/usr/bin/env bash
# Make a local stand-in for the Dockerfile's base image (python:3.11-slim-bookworm) from
# Debian's own packages, for hosts that reach a Debian mirror but not Docker Hub:
#
#   containers/debian-base.sh ENGINE [TAG] [MIRROR]
#   BUILD_ARGS='--build-arg PYTHON_IMAGE=localhost/debian-python:3.11-bookworm' \
#       containers/build.sh podman cpu
#
# ENGINE is docker or podman; TAG defaults to localhost/debian-python:3.11-bookworm and
# MIRROR to http://deb.debian.org/debian. Debian bookworm's Python is 3.11 (python3,
# python3-venv, python-is-python3 give the `python -m venv` the Dockerfile uses). Needs
# root (debootstrap) and about 300 MB in $TMPDIR; the image is about 170 MB.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    echo "usage: containers/debian-base.sh ENGINE [TAG] [MIRROR]" >&2
    exit 2
fi
engine=$1
tag=${2:-localhost/debian-python:3.11-bookworm}
mirror=${3:-http://deb.debian.org/debian}
command -v debootstrap >/dev/null || {
    echo "debian-base.sh: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 1
}

root=$(mktemp -d "${TMPDIR:-/tmp}/rnaloc-base.XXXXXX")
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$root" "$mirror"
# what a slim image leaves out: package caches and lists, documentation, manual pages
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
tar -C "$root" --numeric-owner -c . |
    "$engine" import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$tag"
echo "debian-base.sh: made $tag with $(chroot "$root" python3 --version)"
