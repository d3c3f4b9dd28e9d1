#!/usr/bin/env bash
# Make sure a PostgreSQL server is installed for the tests (they start their own throwaway cluster).
# Under CI=true it installs the distribution's package when missing; elsewhere it only says what
# will happen, and the PostgreSQL tests skip with a one-line reason.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if [ "${CI:-}" != "true" ]; then
  echo "ensure_postgres: no PostgreSQL server installed; its tests will skip (CI=true installs it)" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  echo "ensure_postgres: installing PostgreSQL from apt" >&2
  # The tests run their own cluster: don't let the package create and start a system-wide one.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    $sudo mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
else
  echo "ensure_postgres: CI=true but no apt-get here: install PostgreSQL's server package first" >&2
  exit 1
fi
