#!/usr/bin/env bash
# Runs each fuzzer for a bounded time from the seed corpus; fails on any crash or sanitizer report.
# Usage: run_fuzzers.sh BUILD_DIR SECONDS
set -euo pipefail
build=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
for target in json grpc; do
  work=$(mktemp -d)
  cp -r "$here/corpus/$target/." "$work/"
  echo "fuzz_${target}_request: ${seconds}s"
  ASAN_OPTIONS=detect_leaks=1 "$build/tests/fuzz/fuzz_${target}_request" \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$work" 2>&1 | tail -n 12
  rm -rf "$work"
done
echo "fuzzers: no crashes"
