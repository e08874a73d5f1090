#!/usr/bin/env bash
# `make sanitize`: the plugin itself built with ThreadSanitizer, then with
# AddressSanitizer, and the C host tests and the fault suite run against it.
# Any sanitizer report fails the run; the only suppressions are in
# tests/sanitize/<sanitizer>.supp, each with its reason.
#
# How: the stable toolchain accepts -Zsanitizer with RUSTC_BOOTSTRAP=1. The
# test crate, its dependencies and the plugin cdylib are all built with the
# sanitizer, in target/sanitize-<sanitizer>, so the Rust test binaries carry
# the sanitizer runtime (exported with -rdynamic for the dlopen'd plugin),
# and the C hosts link rustc's own copy of it (librustc-*_rt.<san>.a): gcc's
# libtsan/libasan are older than rustc's LLVM and lack symbols it calls.
# The C side is not instrumented (it was checked under gcc's sanitizers when
# issue 12 was filed); its pthread calls are still intercepted.
#
# Rust's std is the prebuilt, uninstrumented one: rustc must be told the mix
# is known (-Cunsafe-allow-abi-mismatch=sanitizer). With the rust-src
# component, SANITIZE_BUILD_STD=1 rebuilds std with the sanitizer instead
# (-Zbuild-std), which makes the Arc suppression in thread.supp unneeded.
#
# Usage: tests/sanitize/run.sh [thread] [address]
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO=${CARGO:-cargo}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
SYSROOT=$(rustc --print sysroot)
TESTS=(--test c_host --test c_contract
       --test faults_cancel --test faults_hostile --test faults_load --test faults_panic
       --test faults_retry --test faults_secrets --test faults_threads --test faults_timeouts
       --test destroy_from_callback)

sanitizers=("$@")
[ ${#sanitizers[@]} -gt 0 ] || sanitizers=(thread address)

for san in "${sanitizers[@]}"; do
  case "$san" in
    thread) short=tsan ;;
    address) short=asan ;;
    *) echo "unknown sanitizer $san (thread | address)" >&2; exit 2 ;;
  esac
  runtime=$(ls "$SYSROOT"/lib/rustlib/"$TRIPLE"/lib/librustc-*_rt."$short".a | head -n1)
  supp="$PWD/tests/sanitize/$san.supp"
  build_std=()
  mismatch="-Cunsafe-allow-abi-mismatch=sanitizer"
  if [ "${SANITIZE_BUILD_STD:-0}" = 1 ]; then
    build_std=(-Zbuild-std)
    mismatch=""
  fi
  flags="-Zsanitizer=$san -Cdebuginfo=1 $mismatch -Clink-arg=-rdynamic"
  export TSAN_OPTIONS="halt_on_error=0 exitcode=66 suppressions=$supp ${SANITIZE_EXTRA_OPTIONS:-}"
  export ASAN_OPTIONS="halt_on_error=0 exitcode=66 suppressions=$supp"
  export MOONSHOT_C_FLAGS="-g -rdynamic -Wl,--whole-archive $runtime -Wl,--no-whole-archive -lm -lstdc++"
  echo "== $san: C host tests and fault suite (target/sanitize-$san)"
  started=$(date +%s)
  # --target keeps build scripts and proc macros uninstrumented.
  RUSTC_BOOTSTRAP=1 RUSTFLAGS="$flags" \
    "$CARGO" test -q -p moonshot-tests --target "$TRIPLE" --target-dir "target/sanitize-$san" \
    "${build_std[@]}" "${TESTS[@]}"
  echo "== $san: no reports ($(( $(date +%s) - started )) s with the build)"
done
