#!/usr/bin/env bash
# Issue 20's measurement in one command, from the linjax repository root:
#   bash benchmarks/runner_before_after.sh OLD_TREE DATA_DIR [OUT_DIR]
# e.g. bash benchmarks/runner_before_after.sh /tmp/before /work/shared/data /tmp/issue20
#
# 1. Before/after, same run: the shared script (shared/bench/runner_vs_fasttext_cli.sh: fastText's
#    command line against `python -m experiments.train` cold and warm) on every corpus of DATA_DIR
#    and on healthtweets x8, manpages x4 (train.tsv repeated), run from OLD_TREE and from this tree
#    one after the other per corpus; the JAX floor beside each pair. -> OUT_DIR/before_after.jsonl
# 2. This tree's benchmark with issue 20's targets (library, peers, command lines, phases, the
#    scales, the out-of-core memory check at healthtweets x64): -> OUT_DIR/issue20.{jsonl,md}
# Needs: apt-get install fasttext; the bench extra (fastText, scikit-learn).
set -uo pipefail
OLD=${1:?usage: runner_before_after.sh OLD_TREE DATA_DIR [OUT_DIR]}
DATA=${2:?usage: runner_before_after.sh OLD_TREE DATA_DIR [OUT_DIR]}
OUT=${3:-/tmp/issue20}
NEW=$(pwd)
PY=${PYTHON:-python}
SCRIPT=${SCRIPT:-$(cd "$DATA/.." && pwd)/bench/runner_vs_fasttext_cli.sh}
mkdir -p "$OUT"
SCALED=$(mktemp -d); trap 'rm -rf "$SCALED"' EXIT
scale() {  # scale NAME K: DATA/NAME/train.tsv repeated K times (header once)
  mkdir -p "$SCALED/$1_x$2"
  { head -1 "$DATA/$1/train.tsv"; for _ in $(seq "$2"); do tail -n +2 "$DATA/$1/train.tsv"; done; } \
    > "$SCALED/$1_x$2/train.tsv"
  cp "$DATA/$1/test.tsv" "$SCALED/$1_x$2/test.tsv"
}
SCALES=""; CLI_SCALES=""
for spec in healthtweets:8 manpages:4; do
  n=${spec%:*}; k=${spec#*:}
  [ -f "$DATA/$n/train.tsv" ] || continue
  scale "$n" "$k"; SCALES="$SCALES $SCALED/${n}_x$k"; CLI_SCALES="$CLI_SCALES,$spec"
done
[ -f "$DATA/healthtweets/train.tsv" ] && CLI_SCALES="$CLI_SCALES,healthtweets:64:lean"
floor() {
  /usr/bin/time -f '%e %M' -o "$SCALED/floor" "$PY" -c \
    'import jax, jax.numpy as jnp; jnp.zeros(1).block_until_ready()' && cat "$SCALED/floor"
}
: > "$OUT/before_after.jsonl"
corpora=$(cd "$DATA" && for d in */; do [ -f "$d/train.tsv" ] && echo "$DATA/${d%/}"; done)
for dir in $corpora $SCALES; do
  name=$(basename "$dir"); parent=$(dirname "$dir")
  for tree in "$OLD" "$NEW"; do
    read -r floor_s floor_kb < <(floor)
    line=$(cd "$tree" && bash "$SCRIPT" "$parent" "$name" | tail -1)
    echo "{\"tree\": \"$tree\", \"load_1m\": $(cut -d' ' -f1 /proc/loadavg), \"floor_s\": $floor_s, \"floor_mb\": $((floor_kb / 1024)), \"row\": ${line:-null}}" \
      | tee -a "$OUT/before_after.jsonl"
  done
done
"$PY" -m benchmarks.benchmark --data_dir="$DATA" \
  --systems=linjax,fasttext,sklearn_sgd,sklearn_lbfgs,jax_floor,fasttext_cli,linjax_cli \
  --cli_scales="${CLI_SCALES#,}" \
  --out="$OUT/issue20.jsonl" --markdown="$OUT/issue20.md"
"$PY" -c 'import json, sys; from benchmarks import runner_report
print(runner_report.before_after_table([json.loads(l) for l in open(sys.argv[1])]))' \
  "$OUT/before_after.jsonl" > "$OUT/before_after.md"
echo "wrote $OUT/before_after.{jsonl,md} and $OUT/issue20.{jsonl,md}"
