#!/usr/bin/env bash
# MTP speculative decoding on a trained, memory-bound model (issue: inference beyond the
# reference): makes the tiny-R1 data, trains configs/spec-bench.json (a dense 12-layer
# DeepSeek-V3-architecture model, 113M parameters with its MTP module, ~210 MB of BF16 weights
# read per token) for its 300 steps of 2,048 tokens in BF16 (~35 min on 2 cores), then runs
# bench_spec --trained on held-out chat prompts (the SFT validation split): decoding speed at
# batch 1 without and with --speculative, interleaved, and the acceptance rate.
# Everything goes to ~/.cache/seek/spec (or $SEEK_SPEC_DIR); steps already done are skipped.
#   bench/spec_trained.sh [bench_spec options, e.g. --count 16 --rounds 3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seek=${SEEK_BIN:-$root/build/seek}
bench=${SEEK_BENCH_SPEC:-$root/build/bench/bench_spec}
dir=${SEEK_SPEC_DIR:-$HOME/.cache/seek/spec}
[ -x "$seek" ] && [ -x "$bench" ] || { echo "spec_trained.sh: build first (scripts/build)" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
if [ ! -e data/manifest.json ]; then
  "$seek" make-data --out data --seed 1 --corpus-bytes 10000000 --traces 200
fi
if [ ! -e run/final/config.json ]; then
  # The config's relative paths ("data/...", "run") are relative to its own directory.
  cp "$root/configs/spec-bench.json" spec-bench.json
  mkdir -p run/tokenizer
  cp data/tokenizer/tokenizer.json data/tokenizer/tokenizer_config.json run/tokenizer/
  resume=()
  [ -e run/latest ] && resume=(--resume)
  "$seek" train --config spec-bench.json "${resume[@]}"
fi
exec "$bench" run/final --trained --prompts data/sft-val.jsonl "$@"
