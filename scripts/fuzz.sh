#!/usr/bin/env bash
# Builds the libFuzzer target for the policy parser (clang, ASan + UBSan + LeakSanitizer) into
# build-fuzz/ and runs it for SECONDS (default 20) on a scratch copy of the seed corpus, so the
# repository is never modified. Exits non-zero on any crash, leak, timeout, out-of-memory or
# sanitizer report, and prints the reproducer's path. See tests/fuzz/README.md.
# Usage: scripts/fuzz.sh [SECONDS]
# Env:   FUZZ_ARGS   extra libFuzzer flags (e.g. "-jobs=2 -workers=2")
#        FUZZ_CORPUS a corpus directory to use (and grow) instead of the scratch copy
# Exit 77 (ctest: skipped) when clang or libFuzzer's runtime is missing, except under CI=true,
# where that is an error (scripts/setup.sh installs them).
set -euo pipefail
caller_pwd="$PWD"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seconds="${1:-20}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: scripts/fuzz.sh [SECONDS]" >&2
  exit 2
fi

cxx="$(command -v clang++ || command -v clang++-14 || true)"
missing=""
if [[ -z "$cxx" ]]; then
  missing="clang++"
elif ! "$cxx" -print-file-name="libclang_rt.fuzzer-$(uname -m).a" | grep -q /; then
  missing="libFuzzer's runtime (libclang_rt.fuzzer)"
fi
if [[ -n "$missing" ]]; then
  echo "fuzz: $missing not found; run scripts/setup.sh (installs clang and libclang-rt-14-dev)" >&2
  if [[ "${CI:-}" == "true" ]]; then exit 1; fi
  exit 77
fi

build="$root/build-fuzz"
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
mkdir -p "$build"
cmake -S tests/fuzz -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j"$jobs" --target policy_parser_fuzz
built=$(date +%s)
echo "fuzz: built in $((built - start)) s"

# Scratch space: the working corpus (seeds plus what the run discovers) and a log. Artifacts
# (crash-*, leak-*, timeout-*, oom-*) go to build-fuzz/artifacts/ and survive the run.
work="$(mktemp -d "${TMPDIR:-/tmp}/portcullis-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
if [[ -n "${FUZZ_CORPUS:-}" ]]; then
  corpus="$FUZZ_CORPUS"
  if [[ "$corpus" != /* ]]; then corpus="$caller_pwd/$corpus"; fi
  mkdir -p "$corpus"
else
  corpus="$work/corpus"
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/policy_parser/* "$corpus/"
fi
artifacts="$build/artifacts"
mkdir -p "$artifacts"
before="$(ls "$artifacts")"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
llvm_symbolizer="$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || true)"
if [[ -n "$llvm_symbolizer" ]]; then export ASAN_SYMBOLIZER_PATH="$llvm_symbolizer"; fi

log="$work/fuzz.log"
status=0
# Memory: one allocation over 2 GiB is a finding (-malloc_limit_mb). The process's RSS under
# ASan creeps up by about 0.8 MB per 1000 executions on this target (ASan's allocator and
# quarantine; flat without ASan, and LeakSanitizer finds nothing), i.e. ~3 MB/s, so the RSS
# limit grows with the run instead of reporting a false out-of-memory in long runs.
rss_limit=$((2048 + 4 * seconds))
if ((rss_limit > 16384)); then rss_limit=16384; fi
# Runs in the scratch directory: with -jobs, libFuzzer writes fuzz-N.log files to the cwd.
# -timeout: one input taking longer is a finding (parsing 4 KiB should take milliseconds).
# shellcheck disable=SC2086
(cd "$work" && "$build/policy_parser_fuzz" "$corpus" \
  -dict="$root/tests/fuzz/policy.dict" -max_len=4096 -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb="$rss_limit" -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-}) \
  >"$log" 2>&1 || status=$?
end=$(date +%s)
for job_log in "$work"/fuzz-*.log; do
  if [[ -f "$job_log" ]]; then cat "$job_log" >>"$log"; fi
done

# Progress lines are many; show the start, the last few and everything after a report.
grep -E '^INFO: (Seed|Loaded|seed corpus)|^#[0-9]+[[:space:]]+(INITED|DONE)|^Done |^stat::' "$log" || true
grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 2 || true
new="$(comm -13 <(echo "$before") <(ls "$artifacts") | sed "s|^|$artifacts/|")"
if ((status != 0)) || grep -qE '^==[0-9]+== ?ERROR|runtime error:|^SUMMARY: ' "$log" || [[ -n "$new" ]]; then
  sed -n '/^==[0-9]*== \?\(ERROR\|WARNING: \)\|runtime error:\|^ALARM\|deadly signal/,$p' "$log" >&2
  echo "fuzz: FAILED (exit $status) after $((end - built)) s of fuzzing" >&2
  if [[ -n "$new" ]]; then
    echo "fuzz: reproducer(s):" >&2
    echo "$new" | sed 's/^/  /' >&2
    echo "fuzz: reproduce with: $build/policy_parser_fuzz $(echo "$new" | head -n1)" >&2
  else
    tail -n 40 "$log" >&2
  fi
  exit 1
fi
echo "fuzz: passed: ${seconds} s of fuzzing, $((end - start)) s with the build"
