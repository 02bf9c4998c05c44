#!/usr/bin/env bash
# The docker backend without a registry: installs docker.io and debootstrap, starts dockerd if no
# daemon answers, and builds the pinned images the fixtures use (redis:7.4, postgres:16,
# nginx:1.27) from a debootstrapped Debian root, tagged with the pinned names.
#
# These are stand-ins built from Debian's packages (Redis 7.0, PostgreSQL 15, nginx 1.22), with
# entrypoints that behave like the official images' where the fixtures rely on it: POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB; Redis without protected mode; `nginx -g 'daemon off;'`.
# Idempotent: images that already exist are skipped (an online machine may have pulled them).
# Override names with KATA_IMAGE_REDIS, KATA_IMAGE_POSTGRES, KATA_IMAGE_NGINX.
#
# It also builds the Python base image the docker katas build on (python:3.11-slim by default,
# override with KATA_IMAGE_PYTHON): a separate, smaller root with Debian's python3, python3-pip,
# python3-venv and python-is-python3, without the PEP 668 marker, so `python`, `pip install`,
# `python3 -m venv` and `useradd` work as in the official slim image. The katas build FROM it
# with network_mode="none" (the wheels they install come in the build context).
set -euo pipefail

REDIS_IMAGE=${KATA_IMAGE_REDIS:-redis:7.4}
POSTGRES_IMAGE=${KATA_IMAGE_POSTGRES:-postgres:16}
NGINX_IMAGE=${KATA_IMAGE_NGINX:-nginx:1.27}
PYTHON_IMAGE=${KATA_IMAGE_PYTHON:-python:3.11-slim}
SUITE=${SUITE:-bookworm}
LABEL="backend-katas.built-by=docker-images.sh"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
say() { printf 'docker-images.sh: %s\n' "$*"; }

# --- packages -----------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi

# --- the daemon ---------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
    say "starting dockerd (log: /var/log/dockerd-ci.log)"
    $SUDO sh -c 'nohup dockerd >/var/log/dockerd-ci.log 2>&1 &'
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || { say "dockerd did not come up:"; tail -n 20 /var/log/dockerd-ci.log; exit 1; }
fi
say "docker daemon $(docker version --format '{{.Server.Version}}') answers"

# --- leftovers of earlier runs (containers our fixtures labelled) -------------------------
stale=$(docker ps -aq --filter label=backend-katas.owner)
if [ -n "$stale" ]; then
    say "removing $(echo "$stale" | wc -l) leftover fixture container(s)"
    docker rm -f $stale >/dev/null
fi

# --- the Python base image of the docker katas -------------------------------------------
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / && $2 ~ /^http/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
if docker image inspect "$PYTHON_IMAGE" >/dev/null 2>&1; then
    say "$PYTHON_IMAGE exists, skipped"
else
    pywork=$(mktemp -d /var/tmp/kata-python.XXXXXX)
    trap '$SUDO rm -rf "$pywork"' EXIT
    say "debootstrap $SUITE with python3 for $PYTHON_IMAGE (about a minute)"
    $SUDO debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,python-is-python3 \
        "$SUITE" "$pywork/rootfs" "$mirror" >"$pywork/debootstrap.log" 2>&1 \
        || { tail -n 30 "$pywork/debootstrap.log"; exit 1; }
    $SUDO rm -rf "$pywork"/rootfs/var/cache/apt/archives/*.deb "$pywork"/rootfs/var/lib/apt/lists/*
    # the official image's Python is not Debian's: pip may install into it (no PEP 668 marker)
    $SUDO rm -f "$pywork"/rootfs/usr/lib/python3*/EXTERNALLY-MANAGED
    $SUDO tar -C "$pywork/rootfs" -c . | docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'ENV LANG=C.UTF-8' -c "LABEL $LABEL" -c 'CMD ["python3"]' - "$PYTHON_IMAGE" >/dev/null
    $SUDO rm -rf "$pywork"
    trap - EXIT
    say "built $PYTHON_IMAGE ($(docker run --rm --network none "$PYTHON_IMAGE" python3 --version))"
fi

missing=()
for image in "$REDIS_IMAGE" "$POSTGRES_IMAGE" "$NGINX_IMAGE"; do
    docker image inspect "$image" >/dev/null 2>&1 || missing+=("$image")
done
if [ ${#missing[@]} -eq 0 ]; then
    say "images present: $REDIS_IMAGE $POSTGRES_IMAGE $NGINX_IMAGE"
    exit 0
fi

# --- one Debian root with the three servers -----------------------------------------------
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / && $2 ~ /^http/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/kata-images.XXXXXX)
root="$work/rootfs"
cleanup() {
    $SUDO umount "$root/proc" 2>/dev/null || true
    $SUDO rm -rf "$work"
}
trap cleanup EXIT

say "debootstrap $SUITE from $mirror (about a minute)"
$SUDO debootstrap --variant=minbase "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log"; exit 1; }

# Packages must not start daemons inside the chroot (they would run on this host).
printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$root/usr/sbin/policy-rc.d" >/dev/null
$SUDO chmod +x "$root/usr/sbin/policy-rc.d"
$SUDO mkdir -p "$root/etc/postgresql-common"
echo "create_main_cluster = false" | $SUDO tee "$root/etc/postgresql-common/createcluster.conf" >/dev/null
$SUDO mount -t proc proc "$root/proc"
say "installing redis-server, postgresql, nginx into the root"
$SUDO chroot "$root" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends -o Dpkg::Options::=--force-confold redis-server postgresql nginx-light \
    ca-certificates' >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log"; exit 1; }
$SUDO umount "$root/proc"
$SUDO rm -f "$root/usr/sbin/policy-rc.d"
$SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

$SUDO tee "$root/usr/local/bin/docker-entrypoint.sh" >/dev/null <<'ENTRYPOINT'
#!/bin/sh
# Entrypoint of the locally built stand-ins for the official redis, postgres and nginx images.
set -e
case "$1" in
redis-server)
    shift
    # the official image disables protected mode: clients arrive through docker's port mapping
    exec setpriv --reuid=redis --regid=redis --init-groups redis-server "$@" --protected-mode no
    ;;
postgres)
    shift
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    PGDATA=${PGDATA:-/var/lib/postgresql/data}
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        user=${POSTGRES_USER:-postgres}
        db=${POSTGRES_DB:-$user}
        if [ -n "${POSTGRES_PASSWORD:-}" ]; then
            printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
            chown postgres /tmp/pwfile
            as_postgres "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile=/tmp/pwfile \
                -A scram-sha-256 -E UTF8 --locale=C.UTF-8
            rm -f /tmp/pwfile
            method=scram-sha-256
        else
            as_postgres "$bin/initdb" -D "$PGDATA" -U "$user" -A trust -E UTF8 --locale=C.UTF-8
            method=trust
        fi
        echo "host all all all $method" >> "$PGDATA/pg_hba.conf"
        if [ "$db" != "postgres" ]; then
            echo "CREATE DATABASE \"$db\";" | as_postgres "$bin/postgres" --single -D "$PGDATA" postgres >/dev/null
        fi
    fi
    exec setpriv --reuid=postgres --regid=postgres --init-groups \
        "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -k /var/run/postgresql "$@"
    ;;
esac
exec "$@"
ENTRYPOINT
$SUDO chmod +x "$root/usr/local/bin/docker-entrypoint.sh"

say "importing the root"
PATHS='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
base="backend-katas/bookworm-services:local"
$SUDO tar -C "$root" -c . | docker import -c "$PATHS" -c 'CMD ["bash"]' - "$base" >/dev/null

build() {  # build NAME DOCKERFILE-LINES...: a thin layer of metadata over the imported root
    local name=$1; shift
    if docker image inspect "$name" >/dev/null 2>&1; then say "$name exists, skipped"; return; fi
    printf "%s\n" "FROM $base" "LABEL $LABEL" "$@" \
        | docker build -q -t "$name" - >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
    say "built $name"
}
build "$REDIS_IMAGE" 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    'CMD ["redis-server"]' 'EXPOSE 6379'
build "$POSTGRES_IMAGE" 'ENV PGDATA=/var/lib/postgresql/data' \
    'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' 'CMD ["postgres"]' 'STOPSIGNAL SIGINT' \
    'EXPOSE 5432'
build "$NGINX_IMAGE" 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    'CMD ["nginx", "-g", "daemon off;"]' 'STOPSIGNAL SIGQUIT' 'EXPOSE 80'
say "done"
