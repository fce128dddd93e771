#!/usr/bin/env bash
# The benchmark (docs/scale.md): starts the local PostgreSQL of scripts/lib/postgres.sh (durable settings,
# fsync on) unless ORDERS_BENCH_POSTGRES names a server, then runs bench/OrderFunctions.Bench, which
# recreates the databases orders_bench and orders_bench_tpcb on it.
#
#   bash bench/run.sh [--smoke] [--clients 8] [--duration 30] [--warmup 5] [--first-warmup 20] [--rounds 3]
#                     [--traders 64] [--scenarios distinct,hot,mixed]
#
# Prints a progress line per second and the table; writes bench/results/bench-*.json and latency-*.svg.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [[ -z "${ORDERS_BENCH_POSTGRES:-}" ]]; then
    # shellcheck source=../scripts/lib/postgres.sh
    source scripts/lib/postgres.sh
    ORDERS_BENCH_POSTGRES=$(orders_pg_start)
    export ORDERS_BENCH_POSTGRES
fi

dotnet build bench/OrderFunctions.Bench -c Release -v q -nologo >/dev/null
exec dotnet bench/OrderFunctions.Bench/bin/Release/net10.0/OrderFunctions.Bench.dll --out bench/results "$@"
