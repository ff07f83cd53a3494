#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the distributed tuning tests (tests/test_tune_postgres.py).
#
# Usage (from .ci/run):   source .ci/postgres.sh
#   or:                   eval "$(.ci/postgres.sh)"
#
# Exports:
#   GRPO_ZOO_TEST_POSTGRES_URL   postgresql://grpo@127.0.0.1:<port>/grpo_zoo_test  (SQLAlchemy 2.1 + psycopg v3)
#   GRPO_ZOO_TEST_POSTGRES_DATA  the temporary data directory (server log in $GRPO_ZOO_TEST_POSTGRES_DATA/server.log)
# and, when sourced, defines `grpo_zoo_postgres_stop` (stops the server and removes the data directory).
#
# - Installs PostgreSQL with apt-get if no server binaries are found (PATH, then /usr/lib/postgresql/*/bin).
# - initdb in a temp dir, run as the `postgres` user when we are root (PostgreSQL refuses to run as root).
# - Listens on 127.0.0.1 only, on a free port of its own; trust authentication (loopback, throwaway data).
# - If GRPO_ZOO_TEST_POSTGRES_URL is already set and answers, it is reused as is.
# - Needs the Python driver: pip install "psycopg[binary]" (the `postgres` extra of grpo-zoo).

_grpo_zoo_pg_log() { echo "[postgres.sh] $*" >&2; }

_grpo_zoo_pg_bindir() {
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then
        echo "$dir"
        return 0
    fi
    return 1
}

_grpo_zoo_pg_start() {
    if [ -n "${GRPO_ZOO_TEST_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
        && pg_isready -q -d "$GRPO_ZOO_TEST_POSTGRES_URL" 2>/dev/null; then
        _grpo_zoo_pg_log "reusing $GRPO_ZOO_TEST_POSTGRES_URL"
        return 0
    fi

    local bindir
    if ! bindir=$(_grpo_zoo_pg_bindir); then
        _grpo_zoo_pg_log "PostgreSQL not found, installing it with apt-get"
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2 || {
            _grpo_zoo_pg_log "apt-get install postgresql failed"
            return 1
        }
        bindir=$(_grpo_zoo_pg_bindir) || { _grpo_zoo_pg_log "no pg_ctl after install"; return 1; }
    fi

    # Run the server as `postgres` when root (it refuses root), as ourselves otherwise
    local run_as=()
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        if command -v runuser >/dev/null 2>&1; then
            run_as=(runuser -u postgres --)
        else
            run_as=(sudo -u postgres)
        fi
    fi

    local datadir port
    datadir=$(mktemp -d "${TMPDIR:-/tmp}/grpo-zoo-pg.XXXXXX") || return 1
    chmod 700 "$datadir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$datadir"
    # A free port of our own (not 5432: a system server may already use it)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1

    "${run_as[@]}" "$bindir/initdb" -D "$datadir/data" -U grpo -A trust -E UTF8 --no-sync >"$datadir/initdb.log" 2>&1 || {
        _grpo_zoo_pg_log "initdb failed:"; cat "$datadir/initdb.log" >&2; return 1
    }
    # Throwaway server: durability off, quick start
    cat >>"$datadir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$datadir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
    "${run_as[@]}" "$bindir/pg_ctl" -D "$datadir/data" -l "$datadir/server.log" -w -t 60 start >/dev/null || {
        _grpo_zoo_pg_log "pg_ctl start failed:"; cat "$datadir/server.log" >&2; return 1
    }
    "$bindir/createdb" -h 127.0.0.1 -p "$port" -U grpo grpo_zoo_test || { _grpo_zoo_pg_log "createdb failed"; return 1; }

    export GRPO_ZOO_TEST_POSTGRES_URL="postgresql://grpo@127.0.0.1:$port/grpo_zoo_test"
    export GRPO_ZOO_TEST_POSTGRES_DATA="$datadir"
    export _GRPO_ZOO_PG_STOP="${run_as[*]} $bindir/pg_ctl -D $datadir/data -m fast stop"
    _grpo_zoo_pg_log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') running: $GRPO_ZOO_TEST_POSTGRES_URL"
}

grpo_zoo_postgres_stop() {
    [ -n "${_GRPO_ZOO_PG_STOP:-}" ] || return 0
    $_GRPO_ZOO_PG_STOP >/dev/null 2>&1
    [ -n "${GRPO_ZOO_TEST_POSTGRES_DATA:-}" ] && rm -rf "$GRPO_ZOO_TEST_POSTGRES_DATA"
    unset GRPO_ZOO_TEST_POSTGRES_URL GRPO_ZOO_TEST_POSTGRES_DATA _GRPO_ZOO_PG_STOP
}

if (return 0 2>/dev/null); then
    # Sourced: export into the caller's shell, never exit it
    _grpo_zoo_pg_start
else
    _grpo_zoo_pg_start || exit 1
    # Executed: print the exports for `eval "$(.ci/postgres.sh)"`
    echo "export GRPO_ZOO_TEST_POSTGRES_URL='$GRPO_ZOO_TEST_POSTGRES_URL'"
    echo "export GRPO_ZOO_TEST_POSTGRES_DATA='$GRPO_ZOO_TEST_POSTGRES_DATA'"
    echo "export _GRPO_ZOO_PG_STOP='$_GRPO_ZOO_PG_STOP'"
fi
