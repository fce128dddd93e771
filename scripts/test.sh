#!/usr/bin/env bash
# The test command: every test project of the solution, against real PostgreSQL and Azurite (see
# tests/OrderFunctions.Testing for where they come from), then the API contract tests a second time on the other
# host: first LocalHost, then the real Functions worker under the worker test host (ORDERS_TEST_HOST=functions).
#
#   bash scripts/test.sh [dotnet test options...]     e.g.  bash scripts/test.sh --filter "FullyQualifiedName~Schema"
#
# Ends with one line `N passed, N failed, N skipped`, summed over the TRX files of all test projects and both
# hosts, and exits non-zero when a test failed, when dotnet test failed (a build error, a crashed test host) or
# when no test project reported at all.
#
# Environment:
#   ORDERS_TEST_TARGET        solution or project to test                    default OrderFunctions.sln
#   ORDERS_TEST_API_HOSTS     hosts the API tests run on, in order           default "local functions"
#   ORDERS_TEST_RESULTS       directory for the TRX files (emptied first)    default TestResults/scripts-test
#   ORDERS_TEST_HANG_TIMEOUT  kill a test host whose test runs this long     default 15m; empty disables
#   ORDERS_TEST_POSTGRES, ORDERS_TEST_AZURITE, ORDERS_TEST_DOCKER: see tests/OrderFunctions.Testing
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

target=${ORDERS_TEST_TARGET:-OrderFunctions.sln}
api_tests=tests/OrderFunctions.Api.Tests/OrderFunctions.Api.Tests.csproj
read -r -a api_hosts <<<"${ORDERS_TEST_API_HOSTS:-local functions}"
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

common=(--results-directory "$results" --verbosity minimal)
if [[ -n "$hang_timeout" ]]; then
    common+=(--blame-hang-timeout "$hang_timeout" --blame-hang-dump-type none)
fi

# The whole target on the first API host; then, when the target holds the API tests, those tests again on each
# further host, with the build the first run made.
started=$SECONDS
ORDERS_TEST_HOST=${api_hosts[0]:-local} dotnet test "$target" --logger "trx;LogFilePrefix=tests" "${common[@]}" "$@"
dotnet_exit=$?
echo "Test run on the ${api_hosts[0]:-local} host: $((SECONDS - started)) s" >&2
if [[ "$target" == *.sln || "$target" == *OrderFunctions.Api.Tests* ]]; then
    for host in "${api_hosts[@]:1}"; do
        started=$SECONDS
        ORDERS_TEST_HOST=$host dotnet test "$api_tests" --no-build --logger "trx;LogFilePrefix=api-$host-host" "${common[@]}" "$@"
        exit_code=$?
        ((dotnet_exit == 0)) && dotnet_exit=$exit_code
        echo "API tests on the $host host: $((SECONDS - started)) s" >&2
    done
fi

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
unescape() { sed -e 's/&quot;/"/g' -e "s/&apos;/'/g" -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&amp;/\&/g'; }
if ((failed > 0)); then
    # The names (the first 40), then why: the distinct first lines of the failures' messages, most frequent first,
    # so that the cause survives in the last lines of a long log (one broken fixture fails a whole project).
    echo "Failed tests:"
    for file in "${trx_files[@]}"; do
        run=$(basename "$file")
        grep -o '<UnitTestResult [^>]*outcome="\(Failed\|Error\|Timeout\|Aborted\)"[^>]*>' "$file" |
            sed -e "s/.* testName=\"\\([^\"]*\\)\".*/  [${run%%_*}] \\1/" | unescape
    done | awk -v max=40 'NR <= max { print } END { if (NR > max) printf "  ... and %d more\n", NR - max }'
    echo "Why they failed (first line of each message, by count):"
    for file in "${trx_files[@]}"; do
        awk '/<UnitTestResult / { failing = ($0 ~ /outcome="(Failed|Error|Timeout|Aborted)"/) }
             failing && /<Message>/ { sub(/.*<Message>/, ""); sub(/<\/Message>.*/, ""); print substr($0, 1, 300); failing = 0 }' "$file"
    done | unescape | sort | uniq -c | sort -rn | head -n 10
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
