#!/usr/bin/env bash
# make test: run every suite even when one fails, then print one summary of what passed, failed
# and was skipped. A suite counts as skipped when it said so ("<suite>: skipped (why)").
set -uo pipefail
cd "$(dirname "$0")/.."
suites=(lint test-unit test-property fuzz-short e2e test-cluster test-faults)
summary=()
failed=0
for suite in "${suites[@]}"; do
	log=$(mktemp)
	start=$SECONDS
	make --no-print-directory "$suite" 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	took=$((SECONDS - start))
	why=$(grep -E "^${suite}: skipped|^lint: staticcheck not installed, skipped" "$log" | head -1)
	if [ "$status" -ne 0 ]; then
		summary+=("$(printf '%-14s FAILED   %4ds' "$suite" "$took")")
		failed=1
	elif [ -n "$why" ]; then
		summary+=("$(printf '%-14s skipped  %4ds  %s' "$suite" "$took" "${why#*skipped}")")
	else
		summary+=("$(printf '%-14s passed   %4ds' "$suite" "$took")")
	fi
	rm -f "$log"
done
echo
echo "make test: summary"
printf '  %s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
	echo "make test: FAILED (scroll up to the suite's output)"
	exit 1
fi
echo "make test: every suite that ran passed"
