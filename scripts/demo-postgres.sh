# Sourced by scripts/demo.sh when DEMO_DB=postgres (make demo-postgres): a
# throwaway PostgreSQL cluster for the demo, initialised in $DEMO_DIR/pg (as
# root, a 0700 directory of its own under $TMPDIR, owned by postgres) by
# initdb (as the postgres user when run as root: initdb refuses root),
# listening on a free loopback port only, no Unix socket, and stopped and
# removed when the demo ends. Each party gets a database of its own owned
# by a role of its own; the vault's index, data and backup are three
# databases under three roles with separate passwords. Passwords live in a
# 0600 password file (PGPASSFILE), never in a DSN, a command line or a log.

pg_bindir() {
  local p
  if p=$(command -v pg_ctl 2>/dev/null) && p=$(dirname "$(readlink -f "$p")") && [ -x "$p/initdb" ] && [ -x "$p/psql" ]; then
    echo "$p"; return
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n | tail -1)
  [ -n "$d" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/psql" ] || fail "PostgreSQL not found (no pg_ctl on PATH or in /usr/lib/postgresql/*/bin); hint: make postgres installs it"
  echo "$d"
}

PG_BIN=$(pg_bindir)
PG_DIR=$DEMO_DIR/pg
# As root the server runs as postgres, which cannot enter the demo's own
# 0700 directory: the cluster gets a directory of its own under $TMPDIR.
if [ "$(id -u)" = 0 ]; then
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/orderseal-demo-pg.XXXXXX")
fi
PG_AS=()
pg_run() { "${PG_AS[@]}" "$PG_BIN/$1" "${@:2}"; }

# A free loopback port: one nothing answers on.
pg_free_port() {
  local p
  for _ in $(seq 50); do
    p=$(( 20000 + RANDOM % 20000 ))
    if ! (exec 3<> "/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  fail "no free loopback port for PostgreSQL"
}

pg_secret() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

pg_stop() {
  [ -f "$PG_DIR/data/postmaster.pid" ] && pg_run pg_ctl stop -D "$PG_DIR/data" -m fast -w > /dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  rm -f "$DEMO_DIR/pgpass" # the passwords of a cluster that is gone
}

# pg_start: initdb, start, and create the parties' roles and databases;
# sets MERCHANT_DB ISSUER_DB CARRIER_DB VAULT_INDEX VAULT_DATA VAULT_BACKUP.
pg_start() {
  mkdir -p "$PG_DIR"
  local super
  super=$(pg_secret)
  printf '%s\n' "$super" > "$PG_DIR/pwfile"
  chmod 600 "$PG_DIR/pwfile"
  if [ "$(id -u)" = 0 ]; then
    id postgres > /dev/null 2>&1 || fail "running as root and there is no postgres user to run the server as; hint: make postgres installs PostgreSQL with it"
    chown postgres "$PG_DIR" "$PG_DIR/pwfile"
    PG_AS=(runuser -u postgres --)
  fi
  pg_run initdb -D "$PG_DIR/data" -U postgres --pwfile "$PG_DIR/pwfile" --auth-local=scram-sha-256 --auth-host=scram-sha-256 \
    -E UTF8 --locale=C > "$PG_DIR/initdb.log" 2>&1 || { tail -5 "$PG_DIR/initdb.log" >&2; fail "initdb failed"; }
  rm -f "$PG_DIR/pwfile"
  PG_PORT=$(pg_free_port)
  pg_run pg_ctl start -w -t 60 -D "$PG_DIR/data" -l "$PG_DIR/data/server.log" \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200" > /dev/null \
    || { tail -5 "$PG_DIR/data/server.log" >&2; fail "PostgreSQL did not start"; }
  export PGPASSFILE=$DEMO_DIR/pgpass
  ( umask 077; printf '127.0.0.1:%s:*:postgres:%s\n' "$PG_PORT" "$super" > "$PGPASSFILE" )
  local sql="" role db pass
  for pair in shop:merchant bank:issuer parcel:carrier vault_index:vault_index vault_data:vault_data vault_backup:vault_backup; do
    role=${pair%%:*} db=${pair#*:} pass=$(pg_secret)
    printf '127.0.0.1:%s:*:%s:%s\n' "$PG_PORT" "$role" "$pass" >> "$PGPASSFILE"
    sql+="CREATE ROLE $role LOGIN PASSWORD '$pass'; CREATE DATABASE $db OWNER $role; REVOKE ALL ON DATABASE $db FROM PUBLIC;"
  done
  printf '%s' "$sql" | tr ';' '\n' | grep -v '^$' | sed 's/$/;/' | \
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable" > /dev/null \
    || fail "creating the demo's roles and databases failed"
  dsn() { echo "postgres://$1@127.0.0.1:$PG_PORT/$2?sslmode=disable"; }
  MERCHANT_DB=$(dsn shop merchant) ISSUER_DB=$(dsn bank issuer) CARRIER_DB=$(dsn parcel carrier)
  VAULT_INDEX=$(dsn vault_index vault_index) VAULT_DATA=$(dsn vault_data vault_data) VAULT_BACKUP=$(dsn vault_backup vault_backup)
  echo "  PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (throwaway, in $PG_DIR)"
  echo "  databases merchant, issuer, carrier, vault_index, vault_data, vault_backup, each owned by a role of its own"
}

# pg_dump_party PARTY DSN…: a plain-text dump of the party's databases into
# its directory, for the canary search of "who saw what".
pg_dump_party() {
  local party=$1 n=0; shift
  for d in "$@"; do
    n=$((n + 1))
    "$PG_BIN/pg_dump" --no-owner "$d" > "$DEMO_DIR/$party/db-$n.sql" || fail "pg_dump of the $party database failed"
  done
}

# pg_refusal: the vault's index role cannot read the data tables, nor the data role the index's.
pg_refusal() {
  local out
  if out=$("$PG_BIN/psql" -X -q -w -c 'SELECT 1' "${VAULT_DATA/vault_data@/vault_index@}" 2>&1); then fail "the vault's index role reached its data database"; fi
  echo "  vault_index → vault_data: $(echo "${out##*FATAL:  }" | head -1)"
  if out=$("$PG_BIN/psql" -X -q -w -c 'SELECT 1' "${VAULT_INDEX/vault_index@/vault_data@}" 2>&1); then fail "the vault's data role reached its index database"; fi
  echo "  vault_data → vault_index: $(echo "${out##*FATAL:  }" | head -1)"
}
