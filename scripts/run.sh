#!/usr/bin/env bash
# The run command: a working API on http://127.0.0.1:7071 from a fresh clone.
#
#   bash scripts/run.sh [--host functions|local] [--pgbouncer]
#
# 1. PostgreSQL: uses Database__ConnectionString if you set it (then you migrate and seed yourself);
#    otherwise starts the local cluster (scripts/lib/postgres.sh; its data directory is printed), creates the
#    database `orders`, migrates it with the Evolve runner, creates the login `orders_app` and seeds demo data once.
# 2. Blob Storage for the retention job: when no ArchiveStorage__ endpoint is configured (none, or the sample's
#    UseDevelopmentStorage=true), starts Azurite (the npm package tools/ pins) next to the database's data.
# 3. The API: `--host functions` serves the Functions app through the real worker under the worker test host
#    (tests/OrderFunctions.WorkerHost); `--host local` runs LocalHost (the same handlers on Kestrel); without the
#    flag, `func start` where Azure Functions Core Tools exist, LocalHost otherwise. Then it prints a development
#    token and a curl line that executes an order.
# --pgbouncer: the app reaches PostgreSQL through a local PgBouncer in transaction pooling mode on 127.0.0.1:6432
#    (scripts/lib/pgbouncer.sh), as in Azure; migrations and seeding still go straight to PostgreSQL.
# Ctrl-C stops the API (in-flight requests finish), the Azurite and the PostgreSQL it started; the data stays.
# Settings: local.settings.json (created from local.settings.sample.json when missing), then the environment.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

demo_trader=a11ce000-0000-4000-8000-000000000001
demo_admin=ad000000-0000-4000-8000-000000000001
app_password=${ORDERS_APP_PASSWORD:-orders_app_local}
url=http://127.0.0.1:7071

host=""
use_pgbouncer=""
while (($# > 0)); do
    case $1 in
        --host) host=${2:-}; shift 2 || { echo "error: --host needs functions or local" >&2; exit 2; } ;;
        --host=*) host=${1#--host=}; shift ;;
        --pgbouncer) use_pgbouncer=yes; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (usage: bash scripts/run.sh [--host functions|local] [--pgbouncer])" >&2; exit 2 ;;
    esac
done
case $host in
    functions|local) ;;
    "") if command -v func >/dev/null 2>&1; then host=func; else host=local; fi ;;
    *) echo "error: --host $host: use functions (the Functions worker) or local (LocalHost)" >&2; exit 2 ;;
esac
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
workerhost_dll=tests/OrderFunctions.WorkerHost/bin/Release/net10.0/OrderFunctions.WorkerHost.dll
if [[ $host == functions ]]; then
    # Builds the Functions app too: the worker test host starts it from its Release output.
    dotnet build tests/OrderFunctions.WorkerHost -c Release -v q -nologo >/dev/null
fi

# A value of local.settings.json's "Values" (the environment wins over it, as for both hosts).
local_setting() {
    local name=$1
    if [[ -n "${!name:-}" ]]; then
        echo "${!name}"
    else
        sed -n -E "s/^[[:space:]]*\"$name\"[[:space:]]*:[[:space:]]*\"([^\"]*)\".*/\1/p" local.settings.json | head -n 1
    fi
}

# shellcheck source=lib/postgres.sh
source scripts/lib/postgres.sh
data_dir=$(dirname "$(orders_pg_data_dir)")
started_postgres=""
if [[ -z "${Database__ConnectionString:-}" ]]; then
    if ! pg_ctl_status=$(orders_pg_start); then
        exit 1
    fi
    started_postgres=yes
    echo "PostgreSQL data: $(orders_pg_data_dir)" >&2
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
    # A second Ctrl-C (a terminal sends one to every process of the group, an impatient user another) must not
    # cut the cleanup short and leave the database or Azurite running; each step below is bounded.
    trap '' INT TERM
    if [[ -n "${server_pid:-}" ]] && kill -0 "$server_pid" 2>/dev/null; then
        echo "Stopping the API (in-flight requests finish first)..." >&2
        kill -TERM "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    if [[ -n "${azurite_pid:-}" ]] && kill -0 "$azurite_pid" 2>/dev/null; then
        echo "Stopping Azurite..." >&2
        kill -TERM "$azurite_pid" 2>/dev/null
        wait "$azurite_pid" 2>/dev/null
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

# Blob Storage for the archive: Azurite when nothing else is configured (the sample's UseDevelopmentStorage=true
# names the emulator on its default port; an explicit account or service URI is left alone).
archive_connection=$(local_setting ArchiveStorage__ConnectionString)
archive_uri=$(local_setting ArchiveStorage__serviceUri)
if [[ -z "$archive_uri" && ( -z "$archive_connection" || "$archive_connection" == "UseDevelopmentStorage=true" ) ]]; then
    if [[ ! -x tools/node_modules/.bin/azurite-blob ]]; then
        command -v npm >/dev/null 2>&1 || { echo "error: npm is required to start Azurite (tools/package.json), or set ArchiveStorage__ConnectionString" >&2; exit 1; }
        echo "Installing Azurite: npm ci --prefix tools" >&2
        npm ci --prefix tools --no-audit --no-fund --loglevel=error >&2
    fi
    blob_port=10000
    if (exec 3<>/dev/tcp/127.0.0.1/$blob_port) 2>/dev/null; then
        blob_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 10010)
    fi
    mkdir -p "$data_dir/azurite"
    echo "Starting Azurite (Blob) on 127.0.0.1:$blob_port, data in $data_dir/azurite..." >&2
    tools/node_modules/.bin/azurite-blob --blobHost 127.0.0.1 --blobPort "$blob_port" --location "$data_dir/azurite" \
        --skipApiVersionCheck --loose --silent --disableTelemetry &
    azurite_pid=$!
    # The emulator's well-known development account (public, the same in every Azurite).
    export ArchiveStorage__ConnectionString="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$blob_port/devstoreaccount1;"
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$blob_port") 2>/dev/null && break
        kill -0 "$azurite_pid" 2>/dev/null || { echo "error: Azurite exited during start-up" >&2; exit 1; }
        sleep 0.2
    done
fi

case $host in
    func)
        echo "Starting the Functions host (func start) on $url..." >&2
        cp local.settings.json functions/OrderFunctions/local.settings.json
        (cd functions/OrderFunctions && exec func start --port 7071) &
        ;;
    functions)
        echo "Starting the Functions app: the real worker under the worker test host, on $url..." >&2
        dotnet "$workerhost_dll" --urls "$url" --settings "$root/local.settings.json" &
        ;;
    local)
        echo "Starting LocalHost (the same handlers and schedules on Kestrel) on $url..." >&2
        dotnet "$localhost_dll" --urls "$url" --contentRoot "$root" &
        ;;
esac
server_pid=$!
case $host in
    func) served_by="func start" ;;
    functions) served_by="the Functions worker (worker test host)" ;;
    *) served_by="LocalHost" ;;
esac

for _ in $(seq 1 120); do
    curl -fs "$url/api/health" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { echo "error: the API exited during start-up" >&2; exit 1; }
    sleep 0.5
done
curl -fs "$url/api/health" >/dev/null || { echo "error: $url/api/health did not answer" >&2; exit 1; }

token=$(dotnet "$localhost_dll" dev-token "$demo_trader" --contentRoot "$root")
admin_token=$(dotnet "$localhost_dll" dev-token "$demo_admin" --admin --contentRoot "$root")
cat <<INFO

OrderFunctions is up on $url, served by $served_by  (Ctrl-C stops it; the data stays in $data_dir)

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
