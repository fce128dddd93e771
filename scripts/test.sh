#!/usr/bin/env bash
# The test command: every test project that builds and runs on a machine without Azure Functions Core
# Tools, against real PostgreSQL and Azurite (see tests/OrderFunctions.Testing for where they come from).
#
#   bash scripts/test.sh [dotnet test options...]     e.g.  bash scripts/test.sh --filter "FullyQualifiedName~Schema"
#
# Ends with one line `N passed, N failed, N skipped`, summed over the TRX files of all test projects, and
# exits non-zero when a test failed, when dotnet test failed (a build error, a crashed test host) or when no
# test project reported at all.
#
# Environment:
#   ORDERS_TEST_TARGET        solution filter, solution or project to test   default OrderFunctions.Local.slnf
#   ORDERS_TEST_RESULTS       directory for the TRX files (emptied first)    default TestResults/scripts-test
#   ORDERS_TEST_HANG_TIMEOUT  kill a test host whose test runs this long     default 15m; empty disables
#   ORDERS_TEST_POSTGRES, ORDERS_TEST_AZURITE, ORDERS_TEST_DOCKER: see tests/OrderFunctions.Testing
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

target=${ORDERS_TEST_TARGET:-OrderFunctions.Local.slnf}
results=${ORDERS_TEST_RESULTS:-$root/TestResults/scripts-test}
hang_timeout=${ORDERS_TEST_HANG_TIMEOUT-15m}

if [[ ! -e "$target" ]]; then
    echo "error: $target not found in $root (set ORDERS_TEST_TARGET to a solution, filter or project)" >&2
    exit 1
fi

# The Blob emulator for machines without Docker: the azurite npm package pinned in tools/package-lock.json.
if [[ -z "${ORDERS_TEST_AZURITE:-}" && ! -x tools/node_modules/.bin/azurite-blob ]]; then
    if command -v npm >/dev/null 2>&1; then
        echo "Installing the Azurite emulator: npm ci --prefix tools" >&2
        npm ci --prefix tools --no-audit --no-fund --loglevel=error || exit 1
    else
        echo "warning: npm not found: tests that need Azurite will fail unless Docker runs (or ORDERS_TEST_AZURITE is set)" >&2
    fi
fi

rm -rf "$results"
mkdir -p "$results"

args=(test "$target" --logger "trx;LogFilePrefix=tests" --results-directory "$results" --verbosity minimal)
if [[ -n "$hang_timeout" ]]; then
    args+=(--blame-hang-timeout "$hang_timeout" --blame-hang-dump-type none)
fi

dotnet "${args[@]}" "$@"
dotnet_exit=$?

# Sums one attribute of the <Counters> element over every TRX file.
counter() {
    local name=$1 total=0 value file
    for file in "${trx_files[@]}"; do
        value=$(grep -o '<Counters [^>]*>' "$file" | head -n 1 | grep -o " $name=\"[0-9]*\"" | grep -o '[0-9]\+')
        total=$((total + ${value:-0}))
    done
    echo "$total"
}

shopt -s nullglob globstar
trx_files=("$results"/**/*.trx)
shopt -u nullglob globstar

total=$(counter total)
passed=$(counter passed)
failed=$(($(counter failed) + $(counter error) + $(counter timeout) + $(counter aborted)))
skipped=$((total - passed - failed))
((skipped < 0)) && skipped=0

if ((${#trx_files[@]} > 0)); then
    echo
    echo "Test results: ${#trx_files[@]} TRX file(s) in ${results#"$root"/}"
fi
if ((failed > 0)); then
    echo "Failed tests:"
    for file in "${trx_files[@]}"; do
        grep -o '<UnitTestResult [^>]*outcome="\(Failed\|Error\|Timeout\|Aborted\)"[^>]*>' "$file" |
            sed -e 's/.* testName="\([^"]*\)".*/  \1/' -e 's/&quot;/"/g' -e "s/&apos;/'/g" -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&amp;/\&/g'
    done
fi

status=0
if ((${#trx_files[@]} == 0)); then
    echo "error: no test results were written (did the build fail?)"
    status=1
elif ((dotnet_exit != 0 && failed == 0)); then
    echo "error: dotnet test exited with $dotnet_exit although no test failed (a build error, or a test host that crashed or hung)"
fi
if ((dotnet_exit != 0)); then
    status=$dotnet_exit
elif ((failed > 0)); then
    status=1
fi

echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
