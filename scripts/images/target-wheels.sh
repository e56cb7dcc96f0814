#!/bin/sh
# Install the locked wheels of another platform without running anything of it: the build
# machine's pip picks and unpacks them into TARGET (the webhook image's venv, Dockerfile).
#
#   target-wheels.sh PIP ARCH TARGET LOCK [PIP OPTION...]     ARCH: amd64 or arm64
#
# Wheels are taken for ARCH and for the glibc of this machine or older (GLIBC_VERSION, e.g.
# 2.36, overrides it): the build stage runs on the same base image as the final one. pip takes
# each manylinux tag it is given as it is, implying no older glibc, so every one from
# manylinux_2_5 up is listed.
set -eu
pip=$1 arch=$2 target=$3 lock=$4
shift 4
case "$arch" in
    amd64) machine=x86_64 ;;
    arm64) machine=aarch64 ;;
    *) echo "target-wheels.sh: unsupported ARCH $arch" >&2; exit 1 ;;
esac
glibc=${GLIBC_VERSION:-$(getconf GNU_LIBC_VERSION | cut -d' ' -f2)}
newest=${glibc#2.}
set -- --platform "manylinux2014_${machine}" "$@"
minor=5
while [ "$minor" -le "$newest" ]; do
    set -- --platform "manylinux_2_${minor}_${machine}" "$@"
    minor=$((minor + 1))
done
exec "$pip" install --require-hashes --only-binary=:all: --no-deps --target "$target" \
    -r "$lock" "$@"
