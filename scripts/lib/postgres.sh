# shellcheck shell=bash
# A persistent local PostgreSQL cluster for the run command and the benchmark, from the server binaries
# on this machine (Debian's `postgresql` package). Source this file, then:
#
#   orders_pg_start    start the cluster if it is not running (initdb on first use); print its Npgsql
#                      connection string on stdout and export it as ORDERS_PG_CONNECTION, and as a URL for
#                      psql and pgbench as ORDERS_PG_URL
#   orders_pg_stop     stop it (the data stays)
#   orders_pg_bindir   print the directory of the server binaries (initdb, pg_ctl, pgbench), or fail
#
# Settings (environment):
#   ORDERS_PG_DATA      data directory            default <repo>/.data/postgres (git-ignored; kept between runs), or
#                                                 /var/lib/orderfunctions/... when root's postgres user cannot reach the repo
#   orders_pg_data_dir prints the directory in use.
#   ORDERS_PG_PORT      TCP port on 127.0.0.1     default 5432; when 5432 is taken by something else, 55432
#   ORDERS_PG_PASSWORD  the superuser's password  default postgres (set at initdb; scram-sha-256 on 127.0.0.1 only)
#
# Durable settings (fsync on): this cluster's timings are what the benchmark reports. The throwaway test
# clusters are made by tests/OrderFunctions.Testing instead. initdb and postgres refuse to run as root, so
# as root they run as the `postgres` OS user, which owns the data directory.
# Functions return non-zero with a reason on stderr; they never exit the caller.

_orders_pg_repo_root() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
}

_orders_pg_say() {
    echo "postgres: $*" >&2
}

orders_pg_bindir() {
    local bindir candidate
    if command -v pg_config >/dev/null 2>&1; then
        bindir=$(pg_config --bindir 2>/dev/null)
        if [[ -x "$bindir/initdb" ]]; then
            echo "$bindir"
            return 0
        fi
    fi
    # Debian keeps server binaries off PATH, one directory per major version: take the newest.
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -n -r); do
        if [[ -x "$candidate/initdb" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    _orders_pg_say "no PostgreSQL server binaries (initdb) found: install Debian's 'postgresql' package (apt-get install postgresql)"
    return 1
}

# Runs a command as the server's OS user: `postgres` when we are root, ourselves otherwise.
_orders_pg_as_server_user() {
    if [[ $(id -u) -eq 0 ]]; then
        # From /: the caller's directory may be closed to the server user (every path given is absolute).
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

_orders_pg_port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_orders_pg_export() {
    local port=$1 password=${ORDERS_PG_PASSWORD:-postgres}
    ORDERS_PG_CONNECTION="Host=127.0.0.1;Port=$port;Username=postgres;Password=$password;Database=postgres"
    ORDERS_PG_URL="postgresql://postgres:$password@127.0.0.1:$port/postgres"
    export ORDERS_PG_CONNECTION ORDERS_PG_URL
}

# The data directory: ORDERS_PG_DATA, else <repo>/.data/postgres. As root the server runs as the `postgres` OS user,
# which cannot reach a repository inside a closed directory (a clone in /root, mode 0700): then the data lives in
# /var/lib/orderfunctions/<repo name>-<hash of its path>/postgres instead, the same directory on every run.
_orders_pg_data() {
    local root
    if [[ -n "${ORDERS_PG_DATA:-}" ]]; then
        echo "$ORDERS_PG_DATA"
        return
    fi
    root=$(_orders_pg_repo_root)
    if [[ $(id -u) -eq 0 ]] && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$root" 2>/dev/null; then
        echo "/var/lib/orderfunctions/$(basename "$root")-$(printf '%s' "$root" | cksum | cut -d' ' -f1)/postgres"
        return
    fi
    echo "$root/.data/postgres"
}

# Where the cluster keeps its data (for messages).
orders_pg_data_dir() {
    _orders_pg_data
}

_orders_pg_init() {
    local bindir=$1 data=$2 password=${ORDERS_PG_PASSWORD:-postgres} pwfile
    if [[ $(id -u) -eq 0 ]]; then
        if ! id postgres >/dev/null 2>&1; then
            _orders_pg_say "running as root and initdb refuses root: create the OS user 'postgres' (Debian's postgresql package does)"
            return 1
        fi
        mkdir -p "$data" && chown postgres: "$data" && chmod 700 "$data" || return 1
        # Every directory above it must let the server user through (only /var/lib/orderfunctions is ours to open).
        [[ "$data" == /var/lib/orderfunctions/* ]] && chmod 755 /var/lib/orderfunctions "$(dirname "$data")"
        if ! runuser -u postgres -- test -w "$data"; then
            _orders_pg_say "the postgres OS user cannot reach $data (a parent directory is closed to it): set ORDERS_PG_DATA to a directory it can use"
            return 1
        fi
    else
        mkdir -p "$data" && chmod 700 "$data" || return 1
    fi

    pwfile=$(mktemp) || return 1
    printf '%s\n' "$password" >"$pwfile"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$pwfile"
    _orders_pg_say "initdb $data"
    if ! _orders_pg_as_server_user "$bindir/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
        --auth-host=scram-sha-256 --auth-local=peer --encoding=UTF8 --locale=C --no-instructions >"$data.initdb.log" 2>&1; then
        rm -f "$pwfile"
        _orders_pg_say "initdb failed:"
        cat "$data.initdb.log" >&2
        return 1
    fi
    rm -f "$pwfile" "$data.initdb.log"

    # Only TCP on loopback: nothing reachable from another machine, and no socket directory to own.
    _orders_pg_as_server_user tee "$data/pg_hba.conf" >/dev/null <<'EOF'
host all all 127.0.0.1/32 scram-sha-256
EOF
    _orders_pg_as_server_user tee -a "$data/postgresql.conf" >/dev/null <<'EOF'

# OrderFunctions (scripts/lib/postgres.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
EOF
}

orders_pg_start() {
    local bindir data port requested running_port
    bindir=$(orders_pg_bindir) || return 1
    data=$(_orders_pg_data)

    if [[ ! -f "$data/PG_VERSION" ]]; then
        _orders_pg_init "$bindir" "$data" || return 1
    fi

    if _orders_pg_as_server_user "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1; then
        # Already running: its port is the 4th line of postmaster.pid.
        running_port=$(_orders_pg_as_server_user sed -n 4p "$data/postmaster.pid")
        _orders_pg_say "already running on 127.0.0.1:$running_port ($data)"
        _orders_pg_export "$running_port"
        echo "$ORDERS_PG_CONNECTION"
        return 0
    fi

    requested=${ORDERS_PG_PORT:-}
    port=${requested:-5432}
    if _orders_pg_port_in_use "$port"; then
        if [[ -n "$requested" ]]; then
            _orders_pg_say "port $port (ORDERS_PG_PORT) is taken by another program: choose another"
            return 1
        fi
        _orders_pg_say "port 5432 is taken by another program; using 55432 (set ORDERS_PG_PORT to choose)"
        port=55432
        if _orders_pg_port_in_use "$port"; then
            _orders_pg_say "port 55432 is taken too: set ORDERS_PG_PORT to a free port"
            return 1
        fi
    fi

    _orders_pg_say "starting on 127.0.0.1:$port ($data, log $data/postgres.log)"
    if ! _orders_pg_as_server_user "$bindir/pg_ctl" start -D "$data" -l "$data/postgres.log" -w -t 120 -o "-p $port" >/dev/null; then
        _orders_pg_say "pg_ctl start failed; the end of $data/postgres.log:"
        _orders_pg_as_server_user tail -n 20 "$data/postgres.log" >&2
        return 1
    fi

    _orders_pg_export "$port"
    echo "$ORDERS_PG_CONNECTION"
}

orders_pg_stop() {
    local bindir data
    bindir=$(orders_pg_bindir) || return 1
    data=$(_orders_pg_data)
    if [[ ! -f "$data/postmaster.pid" ]]; then
        _orders_pg_say "not running ($data)"
        return 0
    fi
    _orders_pg_as_server_user "$bindir/pg_ctl" stop -D "$data" -m fast -w >/dev/null && _orders_pg_say "stopped ($data)"
}
