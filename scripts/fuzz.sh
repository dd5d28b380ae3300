#!/usr/bin/env bash
# A bounded fuzz campaign over the targets in fuzz/ (see fuzz/README.md):
# builds them with libFuzzer on the stable toolchain, replays the checked-in
# corpus and the crash regressions, then fuzzes each target for at most
# FUZZ_SECONDS seconds and FUZZ_RUNS executions, one process (one core),
# from a scratch copy of the corpus. Exits non-zero on any crash, timeout
# or out-of-memory; the input is kept in fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh                      # every target, the defaults below
#   FUZZ_SECONDS=300 scripts/fuzz.sh decode
#   scripts/fuzz.sh --merge [TARGET...]  # also keep new coverage: the
#                                        # checked-in corpus is replaced by a
#                                        # minimized merge of it, the scratch
#                                        # corpus and fresh seeds
#
# Environment: FUZZ_SECONDS (default 60 per target), FUZZ_RUNS (default
# 5000000 per target), CARGO_TARGET_DIR (default fuzz/target). Runs as any
# user with no stdin; needs only cargo, a C++ compiler (libFuzzer is built
# by the libfuzzer-sys crate) and python3 for --merge.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

merge=false
targets=()
for arg in "$@"; do
    case $arg in
        --merge) merge=true ;;
        -h | --help)
            sed -n '2,19p' "$0"
            exit 0
            ;;
        -*)
            echo "fuzz.sh: unknown option $arg" >&2
            exit 2
            ;;
        *) targets+=("$arg") ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(decode update_rib)
seconds=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:-5000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/fuzz/target}

# What `cargo fuzz build -s none` passes, all of it stable: SanitizerCoverage
# counters and comparison tracing for libFuzzer, plus the checks a release
# build leaves out (an overflow is a bug worth a crash). No sanitizer: wire
# and rib have no unsafe code. --target keeps the flags off build scripts.
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
echo "== fuzz: build (${targets[*]})"
(cd fuzz && cargo build --release --locked --target "$host" --bins)
bin=$CARGO_TARGET_DIR/$host/release

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
total=0
for t in "${targets[@]}"; do
    # Inputs are BGP messages, at most 4096 octets each; the RIB target
    # takes a few in a row.
    case $t in
        decode) max_len=4200 ;;
        update_rib) max_len=8192 ;;
        *)
            echo "fuzz.sh: unknown target $t" >&2
            exit 2
            ;;
    esac
    corpus=fuzz/corpus/$t
    regressions=fuzz/regressions/$t
    mkdir -p "$scratch/$t" "fuzz/artifacts/$t" "$regressions"
    opts=(-max_len="$max_len" -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1)

    echo "== fuzz: $t: replay $corpus and $regressions"
    "$bin/$t" "${opts[@]}" -runs=0 "$corpus" "$regressions" >"$scratch/$t.replay.log" 2>&1 || {
        tail -40 "$scratch/$t.replay.log"
        echo "fuzz: $t: a checked-in input fails (see above)" >&2
        exit 1
    }

    echo "== fuzz: $t: ${seconds}s or $runs executions"
    cp "$corpus"/* "$scratch/$t/"
    status=0
    "$bin/$t" "${opts[@]}" -max_total_time="$seconds" -runs="$runs" \
        "$scratch/$t" "$regressions" >"$scratch/$t.log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t.log" | tail -1)
    grep -E '^#[0-9]+ +DONE|^Done ' "$scratch/$t.log" || true
    if [ "$status" -ne 0 ]; then
        grep -v -E '^#[0-9]+ |Uses: ' "$scratch/$t.log" | tail -60
        echo "fuzz: $t: CRASH (exit $status); input in fuzz/artifacts/$t/" >&2
        echo "fuzz: reproduce: $bin/$t fuzz/artifacts/$t/<file>" >&2
        exit 1
    fi
    total=$((total + ${execs:-0}))
    echo "fuzz: $t: ${execs:-0} executions, no crash"

    if $merge; then
        python3 scripts/fuzz-seed.py "$scratch/seeds"
        mkdir -p "$scratch/$t.min"
        "$bin/$t" "${opts[@]}" -set_cover_merge=1 -use_counters=0 "$scratch/$t.min" \
            "$corpus" "$scratch/$t" "$scratch/seeds/$t" >"$scratch/$t.merge.log" 2>&1
        rm -f "$corpus"/*
        cp "$scratch/$t.min"/* "$corpus/"
        echo "fuzz: $t: corpus now $(ls "$corpus" | wc -l) inputs"
    fi
done
echo "fuzz: ${#targets[@]} targets, $total executions in total, 0 crashes"
