#!/bin/bash
# Entrypoint of the database stand-in: the official mysql image's first-start contract on MariaDB.
# Passwords are read from the environment or *_FILE and reach the server only on stdin, never on a
# command line.
set -euo pipefail

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

log() { printf '%s [standin-entrypoint] %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

# file_env VAR: VAR from the environment, or the contents of the file named by VAR_FILE.
file_env() {
    local var="$1" file_var="${1}_FILE"
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        log "both $var and $file_var are set; use one"
        exit 1
    fi
    if [ -n "${!file_var:-}" ]; then
        printf -v "$var" '%s' "$(<"${!file_var}")"
    fi
    export "${var}=${!var:-}"
    unset "$file_var"
}

sql_string() { # a single-quoted SQL literal
    local s="${1//\\/\\\\}"
    printf "'%s'" "${s//\'/\'\'}"
}

sql_ident() { # a backquoted SQL identifier
    printf '`%s`' "${1//\`/\`\`}"
}

if [ $# -eq 0 ]; then
    set -- mariadbd
fi
# `docker run image --flag` and `command: [--flag, ...]` mean: mariadbd with those flags.
if [ "${1:0:1}" = "-" ]; then
    set -- mariadbd "$@"
fi
if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then
    exec "$@"
fi
shift

initialise() {
    file_env MYSQL_ROOT_PASSWORD
    file_env MYSQL_PASSWORD
    : "${MYSQL_DATABASE:=}" "${MYSQL_USER:=}" "${MYSQL_ROOT_HOST:=%}"
    if [ -z "$MYSQL_ROOT_PASSWORD" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ]; then
        log "database is uninitialised: set MYSQL_ROOT_PASSWORD[_FILE] (or MYSQL_ALLOW_EMPTY_PASSWORD)"
        exit 1
    fi
    log "initialising $DATADIR"
    mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db \
        --auth-root-authentication-method=normal >/dev/null
    mariadbd --user=mysql --datadir="$DATADIR" --skip-networking --socket="$SOCKET" "$@" &
    local pid=$! i
    for i in $(seq 60); do
        mariadb-admin --socket="$SOCKET" -uroot ping >/dev/null 2>&1 && break
        sleep 0.5
    done
    local root_pw user_pw
    root_pw="$(sql_string "$MYSQL_ROOT_PASSWORD")"
    {
        echo "SET @@SESSION.SQL_LOG_BIN=0;"
        # mariadb-install-db also creates root@127.0.0.1, root@::1 and root@<hostname> without a
        # password (and anonymous users on some versions): the official image keeps none of them.
        local h
        for h in 127.0.0.1 ::1 "$(hostname)"; do
            echo "DROP USER IF EXISTS 'root'@$(sql_string "$h"), ''@$(sql_string "$h");"
        done
        echo "DROP USER IF EXISTS ''@'localhost';"
        if [ "$MYSQL_ROOT_HOST" != localhost ]; then
            echo "CREATE USER IF NOT EXISTS 'root'@$(sql_string "$MYSQL_ROOT_HOST") IDENTIFIED BY $root_pw;"
            echo "GRANT ALL ON *.* TO 'root'@$(sql_string "$MYSQL_ROOT_HOST") WITH GRANT OPTION;"
        fi
        if [ -n "$MYSQL_DATABASE" ]; then
            echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$MYSQL_DATABASE");"
        fi
        if [ -n "$MYSQL_USER" ] && [ -n "$MYSQL_PASSWORD" ]; then
            user_pw="$(sql_string "$MYSQL_PASSWORD")"
            echo "CREATE USER IF NOT EXISTS $(sql_string "$MYSQL_USER")@'%' IDENTIFIED BY $user_pw;"
            if [ -n "$MYSQL_DATABASE" ]; then
                echo "GRANT ALL ON $(sql_ident "$MYSQL_DATABASE").* TO $(sql_string "$MYSQL_USER")@'%';"
            fi
        fi
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $root_pw;"
        echo "FLUSH PRIVILEGES;"
    } | mariadb --socket="$SOCKET" -uroot
    kill "$pid"
    wait "$pid" || true
    log "initialised: database ${MYSQL_DATABASE:-none}, user ${MYSQL_USER:-none}"
}

if [ ! -d "$DATADIR/mysql" ]; then
    initialise "$@"
fi
unset MYSQL_ROOT_PASSWORD MYSQL_PASSWORD MYSQL_ROOT_PASSWORD_FILE MYSQL_PASSWORD_FILE
exec mariadbd --user=mysql --datadir="$DATADIR" --bind-address=0.0.0.0 --port=3306 \
    --socket="$SOCKET" "$@"
