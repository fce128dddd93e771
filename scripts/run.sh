#!/usr/bin/env bash
# The run command: a working API on http://127.0.0.1:7071 from a fresh clone.
#
#   bash scripts/run.sh [--pgbouncer]
#
# 1. PostgreSQL: uses Database__ConnectionString if you set it (then you migrate and seed yourself);
#    otherwise starts the local cluster in .data/postgres (scripts/lib/postgres.sh), creates the database
#    `orders`, migrates it with the Evolve runner, creates the login `orders_app` and seeds demo data once.
# 2. Starts `func start` where Azure Functions Core Tools exist, LocalHost (the same handlers on Kestrel)
#    otherwise, and prints a development token and a curl line that executes an order.
# --pgbouncer: the app reaches PostgreSQL through a local PgBouncer in transaction pooling mode on 127.0.0.1:6432
#    (scripts/lib/pgbouncer.sh), as in Azure; migrations and seeding still go straight to PostgreSQL.
# Ctrl-C stops the API (in-flight requests finish) and the PostgreSQL it started; the data stays for next time.
# Settings: local.settings.json (created from local.settings.sample.json when missing), then the environment.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

demo_trader=a11ce000-0000-4000-8000-000000000001
demo_admin=ad000000-0000-4000-8000-000000000001
app_password=${ORDERS_APP_PASSWORD:-orders_app_local}
url=http://127.0.0.1:7071

use_pgbouncer=""
for arg in "$@"; do
    [[ $arg == --pgbouncer ]] && use_pgbouncer=yes
done
if [[ -n "$use_pgbouncer" && -n "${Database__ConnectionString:-}" ]]; then
    echo "error: --pgbouncer puts PgBouncer in front of the PostgreSQL run.sh starts; unset Database__ConnectionString" >&2
    exit 1
fi

command -v dotnet >/dev/null || { echo "error: the .NET SDK (dotnet) is required: https://dot.net" >&2; exit 1; }
[[ -f local.settings.json ]] || cp local.settings.sample.json local.settings.json

echo "Building (Release)..." >&2
dotnet build functions/OrderFunctions.LocalHost -c Release -v q -nologo >/dev/null
dotnet build db/OrderFunctions.Db -c Release -v q -nologo >/dev/null
localhost_dll=functions/OrderFunctions.LocalHost/bin/Release/net10.0/OrderFunctions.LocalHost.dll
runner_dll=db/OrderFunctions.Db/bin/Release/net10.0/OrderFunctions.Db.dll

started_postgres=""
if [[ -z "${Database__ConnectionString:-}" ]]; then
    # shellcheck source=lib/postgres.sh
    source scripts/lib/postgres.sh
    if ! pg_ctl_status=$(orders_pg_start); then
        exit 1
    fi
    started_postgres=yes
    port=$(sed -E 's/.*Port=([0-9]+).*/\1/' <<<"$pg_ctl_status")
    admin="Host=127.0.0.1;Port=$port;Username=postgres;Password=${ORDERS_PG_PASSWORD:-postgres}"
    admin_url="postgresql://postgres:${ORDERS_PG_PASSWORD:-postgres}@127.0.0.1:$port"

    psql "$admin_url/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = 'orders'" | grep -q 1 \
        || psql "$admin_url/postgres" -qc "CREATE DATABASE orders" >/dev/null
    echo "Migrating database orders..." >&2
    dotnet "$runner_dll" migrate --connection "$admin;Database=orders" | tail -n 1 >&2
    psql "$admin_url/orders" -qc "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orders_app') THEN
            CREATE ROLE orders_app LOGIN PASSWORD '$app_password';
        END IF; END \$\$;" >/dev/null
    dotnet "$runner_dll" grant-app orders_app --connection "$admin;Database=orders" >/dev/null
    psql "$admin_url/orders" -q -f db/seed/demo.sql >/dev/null
    export Database__ConnectionString="Host=127.0.0.1;Port=$port;Database=orders;Username=orders_app;Password=$app_password"
    if [[ -n "$use_pgbouncer" ]]; then
        # shellcheck source=lib/pgbouncer.sh
        source scripts/lib/pgbouncer.sh
        Database__ConnectionString=$(orders_pgbouncer_start "$port" orders_app "$app_password") || exit 1
        export Database__ConnectionString
    fi
fi

stop() {
    set +e
    if [[ -n "${server_pid:-}" ]] && kill -0 "$server_pid" 2>/dev/null; then
        echo "Stopping the API (in-flight requests finish first)..." >&2
        kill -TERM "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    if [[ -n "$use_pgbouncer" ]]; then
        orders_pgbouncer_stop
    fi
    if [[ -n "$started_postgres" && -z "${ORDERS_KEEP_POSTGRES:-}" ]]; then
        orders_pg_stop
    fi
}
trap stop EXIT
trap 'exit 130' INT TERM

if command -v func >/dev/null 2>&1; then
    echo "Starting the Functions host (func start) on $url..." >&2
    cp local.settings.json functions/OrderFunctions/local.settings.json
    (cd functions/OrderFunctions && exec func start --port 7071) &
else
    echo "Azure Functions Core Tools not found: starting LocalHost (same handlers and schedules) on $url..." >&2
    dotnet "$localhost_dll" --urls "$url" --contentRoot "$root" &
fi
server_pid=$!

for _ in $(seq 1 120); do
    curl -fs "$url/api/health" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { echo "error: the API exited during start-up" >&2; exit 1; }
    sleep 0.5
done
curl -fs "$url/api/health" >/dev/null || { echo "error: $url/api/health did not answer" >&2; exit 1; }

token=$(dotnet "$localhost_dll" dev-token "$demo_trader" --contentRoot "$root")
admin_token=$(dotnet "$localhost_dll" dev-token "$demo_admin" --admin --contentRoot "$root")
cat <<INFO

OrderFunctions is up on $url  (Ctrl-C stops it; the data stays in .data/postgres)

Demo trader $demo_trader, funded with 100000. Development tokens (12 h, signed with Auth__SigningKey):
  export TOKEN=$token
  export ADMIN_TOKEN=$admin_token

Execute an order:
  curl -s -X POST $url/api/orders -H "Authorization: Bearer \$TOKEN" -H "Content-Type: application/json" -H "Idempotency-Key: \$(cat /proc/sys/kernel/random/uuid)" -d '{"symbol":"EURUSD","side":"buy","type":"market","quantity":"0.10"}'
Then:
  curl -s $url/api/accounts/me -H "Authorization: Bearer \$TOKEN"
  curl -s "$url/api/trades?limit=10" -H "Authorization: Bearer \$TOKEN"
INFO

wait "$server_pid"
