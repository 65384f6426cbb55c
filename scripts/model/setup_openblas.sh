#!/bin/sh
# Debian's python3-torch 1.13 links the *reference* BLAS (libblas3, ~5 GFLOP/s here).
# For a ~10x faster training run, fetch Debian's OpenBLAS (OpenMP flavour) with apt and
# unpack it locally under scripts/model/work/openblas (nothing is installed system-wide).
# pyrun.sh puts it on LD_LIBRARY_PATH when present.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$HERE/work/deb"
cd "$HERE/work/deb"
[ -n "$(ls libopenblas0-openmp_*.deb 2>/dev/null)" ] || apt-get download libopenblas0-openmp
dpkg-deb -x libopenblas0-openmp_*.deb "$HERE/work/openblas"
ls "$HERE/work/openblas/usr/lib/x86_64-linux-gnu/openblas-openmp/"
