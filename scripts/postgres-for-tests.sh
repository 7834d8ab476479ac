#!/usr/bin/env bash
# Makes sure PostgreSQL's server programs (initdb, postgres) are on this machine: the tests start
# throwaway servers from them (tests/pg.py). Installs Debian's `postgresql` package when they are missing
# and is a fast no-op otherwise; prints one line saying which. Needs root (or sudo) only to install.
set -euo pipefail

bindir() {
    # The PATH's programs first, else the newest of Debian's versioned directories.
    local dir
    for dir in "$(dirname "$(readlink -f "$(command -v initdb || echo /nonexistent/initdb)")")" \
        $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/postgres" ]]; then
            echo "$dir"
            return
        fi
    done
}

found=$(bindir)
if [[ -n "$found" ]]; then
    echo "postgres-for-tests: PostgreSQL $("$found/postgres" --version | awk '{print $3}') already installed in $found"
    exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
started=$SECONDS
# The tests make their own servers: stop Debian from creating (and starting) a "main" cluster.
"${sudo[@]}" mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" | "${sudo[@]}" tee /etc/postgresql-common/createcluster.d/no-main-cluster.conf >/dev/null
if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q \
        && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
    } >"$log" 2>&1; then
    cat "$log" >&2
    echo "postgres-for-tests: installing Debian's postgresql package failed (output above)" >&2
    exit 1
fi
found=$(bindir)
if [[ -z "$found" ]]; then
    echo "postgres-for-tests: postgresql was installed but initdb/postgres are not in /usr/lib/postgresql/*/bin" >&2
    exit 1
fi
echo "postgres-for-tests: installed PostgreSQL $("$found/postgres" --version | awk '{print $3}') in $found ($((SECONDS - started)) s)"
