#!/usr/bin/env bash
# Starts the local services the tests use when they are down, with the commands this machine kind documents.
# Idempotent; prints one line per service.
set -u

if command -v pg_isready >/dev/null 2>&1; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
  fi
  pg_isready -h 127.0.0.1 -p 5432 -q && echo "postgresql: up" || echo "postgresql: DOWN"
fi

if command -v mariadb-admin >/dev/null 2>&1; then
  if ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    for _ in $(seq 1 50); do mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && echo "mariadb: up" || echo "mariadb: DOWN"
fi
