#!/usr/bin/env bash
# Starts govmomi's vCenter simulator (tools/vcsim) for the vSphere tests, idempotently:
# installs Go and the govmomi sources from Debian's packages only if missing, builds the
# binary once into target/vcsim/, starts it on 127.0.0.1 unless it already runs, waits
# until it answers, and prints `CMDB_TEST_VCSIM_URL=<url>` for `eval`/export.
#
#   eval "$(.ci/vcsim.sh)" && export CMDB_TEST_VCSIM_URL
#
# Environment: VCSIM_PORT (default 8989). Everything but the last line goes to stderr.
# Nothing is downloaded except Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${VCSIM_PORT:-8989}"
dir="$PWD/target/vcsim"
bin="$dir/vcsim"
pidfile="$dir/vcsim.pid"
log="$dir/vcsim.log"
url="http://127.0.0.1:${port}/sdk"
mkdir -p "$dir"

log() { echo "vcsim.sh: $*" >&2; }

missing=()
command -v go >/dev/null 2>&1 || missing+=(golang-go)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ] ||
    missing+=(golang-github-vmware-govmomi-dev)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    if ! "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >&2; then
        "${as_root[@]}" apt-get update -qq >&2
        "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >&2
    fi
fi

# Rebuild only when the source is newer than the binary.
if [ ! -x "$bin" ] || [ tools/vcsim/main.go -nt "$bin" ]; then
    log "building $bin"
    mkdir -p "$dir/gopath" "$dir/gocache"
    GO111MODULE=off GOFLAGS= GOPATH="$dir/gopath:/usr/share/gocode" GOCACHE="$dir/gocache" \
        go build -o "$bin" ./tools/vcsim >&2
fi

answers() {
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${port}/about" 2>/dev/null
}

running=false
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && answers; then
    running=true
fi
if ! $running; then
    if answers; then
        # A simulator started from another checkout (tests read what it reports, so a
        # used one is fine).
        log "a vcsim already answers on port $port; using it"
        echo "CMDB_TEST_VCSIM_URL=$url"
        exit 0
    fi
    log "starting vcsim on 127.0.0.1:$port"
    nohup "$bin" -listen "127.0.0.1:${port}" >"$log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
        answers && break
        kill -0 "$(cat "$pidfile")" 2>/dev/null || { log "vcsim exited:"; cat "$log" >&2; exit 1; }
        sleep 0.2
    done
    answers || { log "vcsim does not answer on port $port"; exit 1; }
fi
echo "CMDB_TEST_VCSIM_URL=$url"
