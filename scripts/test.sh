#!/usr/bin/env bash
# `make test`: every test, phase by phase, then how long each phase took, so that a slower suite
# shows in every run (CI's included). A phase that fails stops the run and is named.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

phases=(build deploy-check lint test-unit test-e2e)
declare -A took=()
started=$(date +%s)
for phase in "${phases[@]}"; do
  t0=$(date +%s)
  make --no-print-directory "$phase"
  status=$?
  took[$phase]=$(($(date +%s) - t0))
  if [ "$status" -ne 0 ]; then
    printf '\nmake test: %s failed (exit %d) after %ds\n' "$phase" "$status" "${took[$phase]}" >&2
    exit "$status"
  fi
done
mmss() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
total=$(($(date +%s) - started))
summary=
for phase in "${phases[@]}"; do
  summary+="${summary:+, }$phase $(mmss "${took[$phase]}")"
done
printf '\nmake test passed in %s (%s)\n' "$(mmss "$total")" "$summary"
