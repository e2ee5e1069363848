#!/usr/bin/env bash
# run.sh: runs one libFuzzer target (make fuzz, make test-fuzz).
#
#   tests/fuzz/run.sh BUILD_DIR NAME MAX_LEN SECONDS keep|fresh
#
# The binary is BUILD_DIR/NAME. Its working corpus is BUILD_DIR/run/NAME/corpus,
# seeded from tests/fuzz/corpus/NAME (never written to) and
# tests/fuzz/crashes/NAME (inputs of fixed crashes: replayed first, so they
# stay fixed); "fresh" starts it again from the seeds, "keep" adds to what
# earlier runs found. A crash, leak, sanitizer report, timeout or broken
# invariant fails the run: the log's end is printed with the input saved.
set -euo pipefail
dir=$1 name=$2 max_len=$3 secs=$4 mode=$5
src=tests/fuzz
bin=$dir/$name
work=$dir/run/$name
corpus=$work/corpus
[ "$mode" = fresh ] && rm -rf "$work"
mkdir -p "$corpus" "$work/artifacts"
for d in "$src/corpus/$name" "$src/crashes/$name"; do
    if [ -d "$d" ] && [ -n "$(ls -A "$d")" ]; then cp -f "$d"/* "$corpus"/; fi
done
args=(-max_len="$max_len" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048
      -print_final_stats=1 -artifact_prefix="$work/artifacts/")
[ -f "$src/$name.dict" ] && args+=(-dict="$src/$name.dict")
log=$work/log
if ! "$bin" "${args[@]}" "$corpus" >"$log" 2>&1; then
    tail -n 80 "$log"
    echo "fuzz: $name FAILED (full log: $log); the input:" $(ls "$work/artifacts/")
    echo "      reproduce: $bin $work/artifacts/<file>; once fixed, add the file to $src/crashes/$name/"
    exit 1
fi
stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
printf 'fuzz: %-14s %9s runs in %s s, %6s exec/s, cov %s, corpus %s, peak RSS %s MB\n' "$name" \
    "$(stat number_of_executed_units)" "$secs" "$(stat average_exec_per_sec)" "${cov:-?}" "${corp:-?}" \
    "$(stat peak_rss_mb)"
