#!/usr/bin/env bash
# Makes a Docker Engine answer on this machine for the container executor's tests, idempotently:
#   1. installs Debian's docker.io and busybox-static when missing (apt-get update at most once);
#   2. starts dockerd without systemd on /var/run/docker.sock (or $DOCKER_HOST's unix socket) when
#      nothing answers there, and waits for it, bounded;
#   3. builds the test image shoal-test/busybox:latest locally when missing (no registry here).
# Needs root. Without root it says why and exits 0, so the engine tests then skip with a reason.
# Usage: bash .ci/install-docker.sh    (SHOAL_DOCKER_WAIT_S bounds the wait for dockerd, default 60)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
say() { echo "install-docker: $*"; }

if [ "$(id -u)" != 0 ]; then
  say "not root: skipping (container engine tests will skip)"; exit 0
fi

sock=/var/run/docker.sock
case "${DOCKER_HOST:-}" in unix://*) sock="${DOCKER_HOST#unix://}" ;; esac

engine_answers() { timeout 10 docker -H "unix://$sock" info >/dev/null 2>&1; }

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || missing+=(busybox-static)
# busybox-static installs /bin/busybox; a dynamic busybox there would not do inside a bare image.
if [ -x /bin/busybox ] && ldd /bin/busybox >/dev/null 2>&1; then missing+=(busybox-static); fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! engine_answers; then
  say "starting dockerd on unix://$sock"
  mkdir -p "$(dirname "$sock")"
  # A stale pidfile from a killed dockerd makes the next one refuse to start.
  pidfile=/var/run/dockerd-shoal.pid
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then rm -f "$pidfile"; fi
  if [ ! -f "$pidfile" ]; then
    rm -f "$sock"
    nohup dockerd --host "unix://$sock" --pidfile "$pidfile" >/var/log/dockerd-shoal.log 2>&1 </dev/null &
  fi
  deadline=$(( $(date +%s) + ${SHOAL_DOCKER_WAIT_S:-60} ))
  until engine_answers; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      say "dockerd did not answer within ${SHOAL_DOCKER_WAIT_S:-60} s; last lines of /var/log/dockerd-shoal.log:"
      tail -20 /var/log/dockerd-shoal.log >&2 || true
      exit 1
    fi
    sleep 0.5
  done
fi
say "engine $(docker -H "unix://$sock" version --format '{{.Server.Version}}') answers on unix://$sock"

DOCKER_HOST="unix://$sock" bash "$here/test/fixtures/images/build-busybox.sh"
