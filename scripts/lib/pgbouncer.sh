# shellcheck shell=bash
# A local PgBouncer in transaction pooling mode in front of the run command's PostgreSQL, so the local setup
# matches Azure (the app on PgBouncer, migrations straight to PostgreSQL). Debian's `pgbouncer` package.
# Source scripts/lib/postgres.sh first, then:
#
#   orders_pgbouncer_start <postgres port> <login> <password>
#                        start it (listening on 127.0.0.1) for the database `orders`; prints the app's Npgsql
#                        connection string through it
#   orders_pgbouncer_stop  stop it
#
# Settings (environment):
#   ORDERS_PGBOUNCER_PORT  TCP port on 127.0.0.1   default 6432 (Azure's), else 56432 when 6432 is taken
# Its configuration and log live in ORDERS_PG_DATA's parent (default <repo>/.data/pgbouncer). PgBouncer
# refuses root, so as root it runs as the `postgres` OS user.

_orders_pgbouncer_dir() {
    echo "$(dirname "$(_orders_pg_data)")/pgbouncer"
}

orders_pgbouncer_start() {
    local pg_port=$1 login=$2 password=$3 dir port requested executable
    executable=$(command -v pgbouncer || { [[ -x /usr/sbin/pgbouncer ]] && echo /usr/sbin/pgbouncer; }) || true
    if [[ -z "$executable" ]]; then
        echo "pgbouncer: not installed: apt-get install pgbouncer (Debian's package)" >&2
        return 1
    fi
    dir=$(_orders_pgbouncer_dir)
    orders_pgbouncer_stop >/dev/null 2>&1

    requested=${ORDERS_PGBOUNCER_PORT:-}
    port=${requested:-6432}
    if _orders_pg_port_in_use "$port"; then
        if [[ -n "$requested" ]]; then
            echo "pgbouncer: port $port (ORDERS_PGBOUNCER_PORT) is taken by another program: choose another" >&2
            return 1
        fi
        port=56432
        if _orders_pg_port_in_use "$port"; then
            echo "pgbouncer: ports 6432 and 56432 are taken: set ORDERS_PGBOUNCER_PORT to a free port" >&2
            return 1
        fi
    fi

    mkdir -p "$dir" && chmod 700 "$dir" || return 1
    printf '"%s" "%s"\n' "$login" "$password" >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<INI
;; Written by scripts/lib/pgbouncer.sh: PgBouncer as Azure Flexible Server runs it, transaction pooling.
[databases]
orders = host=127.0.0.1 port=$pg_port dbname=orders

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
pool_mode = transaction
default_pool_size = 50
max_client_conn = 5000
server_reset_query_always = 0
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    [[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"
    if ! _orders_pg_as_server_user "$executable" -d -q "$dir/pgbouncer.ini"; then
        echo "pgbouncer: did not start; the end of $dir/pgbouncer.log:" >&2
        tail -n 20 "$dir/pgbouncer.log" >&2
        return 1
    fi
    for _ in $(seq 1 50); do
        _orders_pg_port_in_use "$port" && break
        sleep 0.1
    done
    if ! _orders_pg_port_in_use "$port"; then
        echo "pgbouncer: not listening on 127.0.0.1:$port; the end of $dir/pgbouncer.log:" >&2
        tail -n 20 "$dir/pgbouncer.log" >&2
        return 1
    fi
    echo "pgbouncer: $("$executable" --version | head -n 1) on 127.0.0.1:$port, pool_mode transaction, in front of 127.0.0.1:$pg_port ($dir)" >&2
    echo "Host=127.0.0.1;Port=$port;Database=orders;Username=$login;Password=$password"
}

orders_pgbouncer_stop() {
    local pidfile pid
    pidfile="$(_orders_pgbouncer_dir)/pgbouncer.pid"
    [[ -f "$pidfile" ]] || return 0
    pid=$(cat "$pidfile")
    # Only a pgbouncer: the pid file may be stale and the number reused.
    if [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == pgbouncer ]]; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
}
