#!/usr/bin/env bash
# Installs what the local services backend needs (redis-server, postgresql, nginx, haproxy), and the
# tools katas hold learners' code against: strace, gcc, node.
# Idempotent: installs only what is missing. Starts nothing: the test fixtures start their own
# servers on free loopback ports, so system-wide daemons would only get in the way.
set -euo pipefail

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
# not a service, but the os/syscalls kata shows the real syscalls with it (skipped without)
command -v strace >/dev/null || need+=(strace)
# language/calling_c compiles its C library; networking/js_event_loop compares with node's output
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v node >/dev/null || need+=(nodejs)

if [ ${#need[@]} -eq 0 ]; then
    echo "services.sh: redis-server, postgresql, nginx, haproxy, strace, gcc and node are installed"
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Debian's maintainer scripts start each daemon after installing it; policy-rc.d (exit 101) says
# "not now". Only ours is removed afterwards.
policy=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    ours=1
fi
cleanup() { [ "$ours" -eq 1 ] && $SUDO rm -f "$policy"; return 0; }
trap cleanup EXIT

echo "services.sh: installing ${need[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"

# Stop anything a package started anyway (e.g. where policy-rc.d was not honoured).
for svc in "${need[@]}"; do
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "services.sh: done"
