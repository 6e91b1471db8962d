#!/usr/bin/env bash
# GPU acceptance run on a CUDA machine, from the repo root: bash benchmarks/gpu.sh PHASE...
#   tests       the GPU-marked tests (real Triton)
#   eb:I,J      embedding-bag microbenchmark cases I,J (indices into benchmarks/embedding_bag.CASES):
#               tuned in one process, measured in a fresh one
#   dlrm        the small DLRM, evolved (EVALS evaluations per key) then timed: eager vs Inductor vs kevolve
#   models:A,B  the model benchmarks A, B (benchmarks/run.py BENCHMARKS; RUN_FLAGS e.g. --cudagraphs) through the harness, each after a short
#               warm (BUDGET, EVALS) of the kernels of FAMILIES (default: embedding bags single and batched, gathers, jagged, segment
#               and bucketize ops, the dot interaction, GEMMs), each stopped after MODEL_TIMEOUT seconds; WARM=0 skips the warm
#               (the cache of an earlier warm: phase on the same machine is used)
#   warm:A,B    only the warm of the model benchmarks A, B (BUDGET, EVALS, FAMILIES, WARM_FLAGS e.g. --retune --check-model; every
#               evaluation printed to warm-A.log),
#               each stopped after MODEL_TIMEOUT seconds (the DLRM's 7 keys took 235 s on the H200)
#   host:A,B    where the host time of the forward (HOST_PHASE=train: the training step) of the model benchmarks
#               A, B goes (benchmarks.host_time, host-A-DEV.json): Inductor against kevolve with the caches as they are
#   compile:A,B warm-cache compile time of the model benchmarks A, B in fresh processes (benchmarks.compile_time:
#               Inductor against kevolve, ROUNDS rounds, default 3; compile-time-A-DEV.json)
#   varying:A,B the model benchmarks A, B (benchmarks/varying.py MODELS) trained on batches of differing lengths: graphs
#               compiled, errors and step time of eager, Inductor and kevolve with the caches as they are (varying-A-DEV.json)
#   micro       the per-family CUDA microbenchmarks: batched embedding bags (tbe-DEV.json), dot and FM interactions
#               (interaction-DEV.json, fm_interaction-DEV.json), jagged and segment ops (jagged-DEV.json);
#               micro:A,B only those of A, B (of tbe, interaction, fm_interaction, jagged)
#   gemm        the DLRM's MLP products (forward, grad_input, grad_weight) through the gemm family (gemm-DEV.json)
#   landscape:I,J  every embedding-bag forward genome on benchmarks.search_grid.GRID keys I,J (landscape-DEV.json, extended
#               key by key; replay it anywhere with benchmarks.landscape_replay)
#   prep        feature-preprocessing modules (benchmarks.models.preprocessing): eager vs Inductor vs kevolve
#               (bucketize keys tuned in a temporary cache), preprocessing-DEV.json
#   pool        what an evaluation pool costs per candidate: Evaluator vs LocalPool vs RayPool (pool_overhead-DEV.json;
#               Ray's session logs in ray-logs.tgz)
#   coverage    every claimed overload on CUDA (coverage-DEV.md/json) and its speed (speed-DEV.md/json)
#   import:F    check the exported records of file F (an earlier warm's, e.g. benchmarks/results/records/*.json) on this
#               GPU and add those that pass to the cache, so later phases run with them without warming again
#   remeasure:F measure the records of file F (e.g. the shipped torch_kevolve/kernel_cache/h100-torch2.11-triton3.6.json)
#               that were measured on this GPU again with this checkout's sources (KEYS=REGEX: only the keys it
#               matches); all of them, win or not, in remeasured-DEV.json, for `kevolve cache ship --replace`
#   candidates:M:F  benchmarks.tune_candidates M F with the candidates of CANDIDATES (one IMPLEMENTATION=GENOME_JSON a
#               line) and --check-model: each key's fittest stored if the model's step gains (candidates-M-F.log);
#               KEYS=REGEX tunes only the keys it matches
# Results and logs go to $OUT (default /tmp/kevolve-out), named by DEV (default: the GPU's model, e.g. h200); the tuned
# records are exported there too.
# DEADLINE=S: the whole run ends within S seconds: each phase is stopped when the time left (less RESERVE, default 30 s,
# for the export) runs out, and a phase with under 10 s left is skipped, so the cache is exported and everything
# written so far comes back even where a phase overruns (a device call that reaches its limit returns nothing).
set -uo pipefail
OUT=${OUT:-/tmp/kevolve-out}
mkdir -p "$OUT"
DEV=${DEV:-$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | grep -o "[AHBL][0-9]\{2,3\}" | head -1 | tr A-Z a-z)}
DEV=${DEV:-gpu}
export OUT DEV KEVOLVE_CACHE_DIR=${KEVOLVE_CACHE_DIR:-/tmp/kevolve-cache} PYTHONUNBUFFERED=1

run_phase() {
  local phase=$1
  case $phase in
    tests) python3 -m pytest -q -m gpu tests 2>&1 | tee "$OUT/gpu-tests.log" | tail -3 ;;
    eb:*) python3 -m benchmarks.embedding_bag --cases "${phase#eb:}" --limit "${LIMIT:-16}" --tune only \
            2>&1 | tee -a "$OUT/embedding_bag.log" | grep "^  best" ;
          python3 -m benchmarks.embedding_bag --cases "${phase#eb:}" --tune skip \
            --save "$OUT/embedding_bag-$(echo "${phase#eb:}" | tr , -)-$(date +%s).json" 2>&1 | tee -a "$OUT/embedding_bag.log" | grep -v "^tuning\|^  best\|^already\|^    \|^W1" ;;
    dlrm) python3 -m benchmarks.run dlrm_small --device cuda --warm --evaluations "${EVALS:-16}" \
            --save "$OUT/dlrm_small-$DEV.json" 2>&1 | tee "$OUT/dlrm.log" | tail -20 ;;
    models:*|warm:*) for name in $(echo "${phase#*:}" | tr , ' '); do
            if [ "${phase%%:*}" = warm ]; then how=(--warm --warm-only ${WARM_FLAGS:-}); log="$OUT/warm-$name.log"
            else how=(${RUN_FLAGS:-} --save "$OUT/$name-$DEV.json"); log="$OUT/$name.log"
                 [ "${WARM:-1}" = 0 ] || how=(--warm "${how[@]}"); fi
            timeout "${MODEL_TIMEOUT:-150}" python3 -m benchmarks.run "$name" --device cuda "${how[@]}" \
              --budget "${BUDGET:-45s}" --evaluations "${EVALS:-8}" --families ${FAMILIES:-embedding_bag embedding_bag_backward embedding_bags embedding_bags_backward gather jagged segment_reduce bucketize interaction gemm} \
              > "$log" 2>&1
            echo "$name: exit $?"; grep -A8 "^| contender" "$log"; grep "^  best\|evolving\|cannot" "$log"
          done ;;
    host:*) for name in $(echo "${phase#host:}" | tr , ' '); do
              python3 -m benchmarks.host_time "$name" "$OUT/host-$name-$DEV.json" --phase "${HOST_PHASE:-forward}" 2>&1 \
                | tee "$OUT/host-$name.log" \
                | grep -v "^W1\|Warning"
            done ;;
    compile:*) for name in $(echo "${phase#compile:}" | tr , ' '); do
              python3 -m benchmarks.compile_time "$name" "$OUT/compile-time-$name-$DEV.json" --rounds "${ROUNDS:-3}" 2>&1 \
                | tee "$OUT/compile-time-$name.log" | grep -v "^W1\|Warning"
            done ;;
    varying:*) for name in $(echo "${phase#varying:}" | tr , ' '); do
              python3 -m benchmarks.varying "$name" --device cuda --save "$OUT/varying-$name-$DEV.json" 2>&1 \
                | tee "$OUT/varying-$name.log" | grep -v "^W1\|Warning"
            done ;;
    micro|micro:*) names=${phase#micro}; names=${names#:}
           for bench in $(echo "${names:-tbe,interaction,fm_interaction,jagged}" | tr , ' '); do
             python3 -m "benchmarks.$bench" "$OUT/$bench-$DEV.json" 2>&1 | tee "$OUT/$bench.log" | grep -v "^W1\|Warning"
           done ;;
    gemm) python3 -m benchmarks.gemm "$OUT/gemm-$DEV.json" 2>&1 | tee "$OUT/gemm.log" | grep -v "^W1\|Warning" ;;
    landscape:*) python3 -m benchmarks.landscape "$OUT/landscape-$DEV.json" --keys "${phase#landscape:}" 2>&1 \
            | tee -a "$OUT/landscape.log" | grep -v "^W1\|Warning" ;;
    prep) python3 -m benchmarks.preprocessing "$OUT/preprocessing-$DEV.json" 2>&1 | tee "$OUT/preprocessing.log" \
            | grep -v "^W1\|^  " ;;
    pool) python3 -m benchmarks.pool_overhead "$OUT/pool_overhead-$DEV.json" > "$OUT/pool.log" 2>&1; tail -5 "$OUT/pool.log"
          tar czf "$OUT/ray-logs.tgz" -C /tmp/ray session_latest/logs 2>/dev/null ;;
    import:*) python3 -m torch_kevolve.cli cache import "${phase#import:}" 2>&1 | tee -a "$OUT/import.log" \
                | grep -v "^W1\|Warning" | tail -20 ;;
    remeasure:*) python3 -m torch_kevolve.cli cache remeasure "${phase#remeasure:}" ${KEYS:+--keys "$KEYS"} \
              --out "$OUT/remeasured-$DEV.json" 2>&1 | tee -a "$OUT/remeasure.log" | grep -v "^W1\|Warning" | tail -40 ;;
    candidates:*) spec=${phase#candidates:}; mapfile -t chosen <<< "${CANDIDATES:?one IMPLEMENTATION=GENOME_JSON a line}"
            python3 -m benchmarks.tune_candidates "${spec%%:*}" "${spec#*:}" "${chosen[@]}" --check-model \
              ${KEYS:+--keys "$KEYS"} 2>&1 \
              | tee -a "$OUT/candidates-${spec//:/-}.log" | grep -v "^W1\|Warning" ;;
    coverage) python3 -m benchmarks.coverage_gpu "$OUT" --device-label "$DEV" 2>&1 | tee "$OUT/coverage.log" | tail -3 ;;
    *) echo "unknown phase $phase"; return 2 ;;
  esac
}

if [ "${1:-}" = --phase ]; then run_phase "$2"; exit; fi
ends=$((SECONDS + ${DEADLINE:-0} - ${RESERVE:-30}))
python3 -m pip install -q --no-deps --no-build-isolation . > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
for phase in "$@"; do
  if [ -z "${DEADLINE:-}" ]; then bash "$0" --phase "$phase"; continue; fi
  left=$((ends - SECONDS))
  if [ "$left" -lt 10 ]; then echo "$phase: skipped, ${left}s left of DEADLINE=$DEADLINE"; continue; fi
  timeout -k 5 "$left" bash "$0" --phase "$phase"
  case $? in 124|137) echo "$phase: stopped at DEADLINE=$DEADLINE" ;; esac
done
python3 -m torch_kevolve.cli cache export "$OUT/records-$(date +%s).json"
