#!/usr/bin/env bash
# Fuzzes upkeep's parsers for a while each with cargo-fuzz (libFuzzer + AddressSanitizer): the
# VRRP advert decoder, the KDL config loader and the keepalived importer (fuzz/fuzz_targets/).
#   scripts/fuzz.sh                    # every target for 60 s
#   scripts/fuzz.sh 600                # every target for 10 minutes
#   scripts/fuzz.sh 60 vrrp_decode     # one target
# Not part of CI. Needs a nightly toolchain (installed with rustup when missing) and cargo-fuzz
# (installed from crates.io when missing). The targets depend on the protocol, config and importer
# crates alone (no daemon, wasmtime or tokio), built with sanitizer instrumentation into fuzz/target.
#
# A crash stops its target; the input is kept in fuzz/artifacts/TARGET/ and the summary names
# it. Reproduce it with `cargo +nightly fuzz run TARGET FILE`, then turn it into a regression test
# next to the code it broke (docs/reliability.md).
#
# Environment: FUZZ_TOOLCHAIN (default nightly); FUZZ_BUILD_FLAGS (default "-O": optimised, no
# debug assertions, as the daemon ships; "" for cargo-fuzz's default, which adds debug
# assertions and overflow checks and means a full rebuild); CARGO_BUILD_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true
if (($#)); then
    targets=("$@")
else
    targets=(vrrp_decode config_parse keepalived_import)
fi
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
read -r -a build_flags <<<"${FUZZ_BUILD_FLAGS--O}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

if ! cargo "+$toolchain" --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing the $toolchain toolchain (libFuzzer's sanitizer flags need it)"
    rustup toolchain install "$toolchain" --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Seeds: adverts built with upkeep's own codec, the repository's KDL and keepalived configs, and
# the seed keepalived.conf of the shared folder when it is there. The main target dir is reused.
extra=()
for f in ../shared/seed/keepalived.conf; do
    if [ -f "$f" ]; then extra+=("$f"); fi
done
CARGO_TARGET_DIR="$PWD/target" cargo run -q --manifest-path fuzz/seedgen/Cargo.toml -- \
    "$PWD" fuzz/corpus "${extra[@]}"

echo "fuzz.sh: building the fuzz targets (cargo +$toolchain fuzz build ${build_flags[*]})"
cargo "+$toolchain" fuzz build "${build_flags[@]}"

summary=()
crashed=0
for t in "${targets[@]}"; do
    dir="fuzz/artifacts/$t"
    mkdir -p "$dir"
    log="fuzz/artifacts/$t.log"
    marker="fuzz/artifacts/.$t.start"
    touch "$marker"
    echo "fuzz.sh: $t for ${secs}s (log: $log)"
    set +e
    cargo "+$toolchain" fuzz run "${build_flags[@]}" "$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1)
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    mapfile -t found < <(find "$dir" -type f -newer "$marker" | sort)
    rm -f "$marker"
    if ((${#found[@]})) || ((rc != 0)); then
        crashed=1
        echo "fuzz.sh: $t FAILED (exit $rc); the end of $log:"
        grep -E 'panicked|ERROR|SUMMARY|Test unit written|Base64' "$log" | head -n 20 || tail -n 30 "$log"
    fi
    summary+=("$(printf '%-18s %6ss %12s execs %8s/s %6s corpus  %s crash(es) %s' \
        "$t" "$secs" "${execs:-?}" "${rate:-?}" "$corpus" "${#found[@]}" "${found[*]:-}")")
done

echo
echo "fuzz.sh: summary"
printf '  %s\n' "${summary[@]}"
exit "$crashed"
