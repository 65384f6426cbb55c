#!/bin/sh
# Run Debian's /usr/bin/python3 (which has torch 1.13 + numpy), with the locally unpacked
# OpenBLAS from setup_openblas.sh on LD_LIBRARY_PATH when it exists.
HERE=$(cd "$(dirname "$0")" && pwd)
OB="$HERE/work/openblas/usr/lib/x86_64-linux-gnu/openblas-openmp"
if [ -d "$OB" ]; then
  LD_LIBRARY_PATH="$OB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
fi
export OMP_NUM_THREADS=2
# idle OpenMP workers sleep instead of spinning: much less sensitive to other load on the 2 cores
export OMP_WAIT_POLICY=PASSIVE
exec /usr/bin/python3 "$@"
