#!/bin/sh
# Installs the shoal executable on this host and, where systemd runs, a shoal.service unit.
#
#   sh install.sh [--] [DAEMON ARGS...]
#   curl -fsSL http://MANAGER:PORT/install.sh | sh -s -- --join MANAGER:PORT --token T
#
# DAEMON ARGS (and INSTALL_SHOAL_EXEC) go to `shoal daemon` as they are.
#
# Where the executable comes from (the first that is set):
#   INSTALL_SHOAL_BIN_PATH     a local file, e.g. dist/shoal
#   INSTALL_SHOAL_URL          a URL to download it from (curl or wget)
#   (a manager's /install.sh)  that manager's own executable
#   default                    ./dist/shoal beside this script
# Checksum: INSTALL_SHOAL_SHA256, else the .sha256 file beside the executable (URL.sha256 or
# PATH.sha256). A download without either is refused; a mismatch stops before anything is installed.
#
# Other settings:
#   INSTALL_SHOAL_BIN_DIR      where the executable goes (default /usr/local/bin)
#   INSTALL_SHOAL_SYSTEMD_DIR  where the unit goes (default /etc/systemd/system)
#   INSTALL_SHOAL_DATA_DIR     the daemon's --data-dir (default: the daemon's own, /var/lib/shoal as root)
#   INSTALL_SHOAL_EXEC         more daemon arguments, split on spaces, before DAEMON ARGS
#   INSTALL_SHOAL_SKIP_START=true    install (and enable the unit) but do not start the daemon
#   INSTALL_SHOAL_SKIP_ENABLE=true   write the unit but neither enable nor start it
#   INSTALL_SHOAL_SYSTEMD=auto|true|false   write a shoal.service unit: auto (default) when systemd runs;
#                              true also when it does not run yet (an image being built: the unit is
#                              enabled and starts at boot); false never (the daemon runs in the foreground)
# Writes shoal-uninstall.sh beside the executable; it removes exactly what this script installed.
set -eu

# A manager serving this script over HTTP sets these two lines to its own executable.
SHOAL_DEFAULT_URL=
SHOAL_DEFAULT_ARCH=

info() { echo "[shoal] $*" >&2; }
fatal() { echo "[shoal] error: $*" >&2; exit 1; }

# Shell-quote one argument for printing a command line that can be pasted back.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# Quote one argument for a systemd ExecStart line (double quotes; \, ", $ and % escaped).
unit_quote() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\$/$$/g' -e 's/%/%%/g')"; }

detect_arch() {
  [ "$(uname -s)" = Linux ] || fatal "shoal runs on Linux, not $(uname -s)"
  machine=$(uname -m)
  case "$machine" in
    x86_64|amd64) ARCH=amd64 ;;
    aarch64|arm64) ARCH=arm64 ;;
    *) fatal "unsupported architecture $machine: shoal is built for x86_64 (amd64) and aarch64 (arm64)" ;;
  esac
}

# sudo only where it is needed: not root and the target directory is not ours to write.
sudo_for() { # dir
  if [ "$(id -u)" -eq 0 ]; then return 0; fi
  probe=$1
  while [ ! -d "$probe" ]; do probe=$(dirname "$probe"); done
  if [ -w "$probe" ]; then return 0; fi
  command -v sudo >/dev/null 2>&1 || fatal "$1 is not writable and sudo is missing: run as root, or point INSTALL_SHOAL_BIN_DIR / INSTALL_SHOAL_SYSTEMD_DIR at directories of yours"
  echo sudo
}

download() { # url dest
  if command -v curl >/dev/null 2>&1; then curl -fsSL -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then wget -qO "$2" "$1"
  else fatal "need curl or wget to download $1"; fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else fatal "need sha256sum or shasum to verify the executable"; fi
}

# Fetch the executable into $TMP/shoal and its expected checksum into EXPECTED (may stay empty for a local file).
fetch_executable() {
  EXPECTED=${INSTALL_SHOAL_SHA256:-}
  url=${INSTALL_SHOAL_URL:-$SHOAL_DEFAULT_URL}
  if [ -n "${INSTALL_SHOAL_BIN_PATH:-}" ]; then
    [ -f "$INSTALL_SHOAL_BIN_PATH" ] || fatal "INSTALL_SHOAL_BIN_PATH: no file at $INSTALL_SHOAL_BIN_PATH"
    cp "$INSTALL_SHOAL_BIN_PATH" "$TMP/shoal"
    if [ -z "$EXPECTED" ] && [ -f "$INSTALL_SHOAL_BIN_PATH.sha256" ]; then EXPECTED=$(cut -d' ' -f1 < "$INSTALL_SHOAL_BIN_PATH.sha256"); fi
  elif [ -n "$url" ]; then
    if [ -z "${INSTALL_SHOAL_URL:-}" ] && [ -n "$SHOAL_DEFAULT_ARCH" ] && [ "$SHOAL_DEFAULT_ARCH" != "$ARCH" ]; then
      fatal "the manager serves a linux-$SHOAL_DEFAULT_ARCH executable and this host is linux-$ARCH: set INSTALL_SHOAL_URL to a linux-$ARCH build"
    fi
    info "downloading $url (linux-$ARCH)"
    download "$url" "$TMP/shoal" || fatal "download of $url failed"
    if [ -z "$EXPECTED" ]; then
      download "$url.sha256" "$TMP/shoal.sha256" || fatal "no checksum: $url.sha256 could not be fetched and INSTALL_SHOAL_SHA256 is not set"
      EXPECTED=$(cut -d' ' -f1 < "$TMP/shoal.sha256")
    fi
  else
    here=$(cd "$(dirname "$0")" 2>/dev/null && pwd) || here=.
    [ -f "$here/dist/shoal" ] || fatal "no executable: build one with 'npm run build' or set INSTALL_SHOAL_BIN_PATH / INSTALL_SHOAL_URL"
    cp "$here/dist/shoal" "$TMP/shoal"
  fi
}

verify_executable() {
  if [ -n "$EXPECTED" ]; then
    printf '%s' "$EXPECTED" | grep -Eq '^[0-9a-fA-F]{64}$' || fatal "the expected checksum '$EXPECTED' is not a sha256 (64 hex digits)"
    EXPECTED=$(printf '%s' "$EXPECTED" | tr 'A-F' 'a-f')
    got=$(sha256_of "$TMP/shoal")
    [ "$got" = "$EXPECTED" ] || fatal "checksum mismatch: expected $EXPECTED, got $got; nothing was installed"
    info "checksum verified ($got)"
  fi
  chmod 0755 "$TMP/shoal"
  "$TMP/shoal" --help >/dev/null 2>&1 || fatal "the executable does not run on this host (linux-$ARCH); if $TMP is on a noexec mount, point TMPDIR elsewhere"
}

systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

want_unit() {
  case "${INSTALL_SHOAL_SYSTEMD:-auto}" in
    auto) systemd_running ;;
    true) command -v systemctl >/dev/null 2>&1 || fatal "INSTALL_SHOAL_SYSTEMD=true but systemctl is missing" ;;
    false) return 1 ;;
    *) fatal "INSTALL_SHOAL_SYSTEMD='${INSTALL_SHOAL_SYSTEMD}': expected auto, true or false" ;;
  esac
}

write_uninstall() {
  {
    cat <<'HEAD'
#!/bin/sh
# Removes what install.sh installed. The data directory is kept.
set -u
HEAD
    echo "SUDO=${SUDO_BIN:-${SUDO_UNIT:-}}"
    if [ -n "$UNIT" ]; then
      cat <<'SYSTEMD'
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now shoal.service >/dev/null 2>&1 || true
fi
SYSTEMD
      echo "\$SUDO rm -f $(quote "$UNIT")"
      cat <<'RELOAD'
if [ -d /run/systemd/system ]; then $SUDO systemctl daemon-reload || true; fi
RELOAD
    fi
    echo "\$SUDO rm -f $(quote "$BIN_DIR/shoal") $(quote "$BIN_DIR/shoal-uninstall.sh")"
    echo "echo $(quote "[shoal] uninstalled; the data directory is kept (remove it by hand): ${DATA_DIR:-/var/lib/shoal as root, else ~/.local/share/shoal}")"
  } > "$TMP/shoal-uninstall.sh"
  $SUDO_BIN install -m 0755 "$TMP/shoal-uninstall.sh" "$BIN_DIR/shoal-uninstall.sh"
}

write_unit() {
  exec_start=$(unit_quote "$BIN_DIR/shoal")
  for a in daemon "$@"; do exec_start="$exec_start $(unit_quote "$a")"; done
  cat > "$TMP/shoal.service" <<UNIT
[Unit]
Description=shoal orchestrator daemon
Documentation=https://github.com/shoal/shoal
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStart=$exec_start
# Stop the daemon only: tasks outlive it and are re-attached at the next start.
KillMode=process
Delegate=yes
Restart=always
RestartSec=2
LimitNOFILE=1048576
TasksMax=infinity

[Install]
WantedBy=multi-user.target
UNIT
  SUDO_UNIT=$(sudo_for "$SYSTEMD_DIR") || exit 1
  $SUDO_UNIT mkdir -p "$SYSTEMD_DIR"
  $SUDO_UNIT install -m 0644 "$TMP/shoal.service" "$UNIT"
  info "wrote $UNIT"
}

main() {
  [ "${1:-}" = "--" ] && shift
  detect_arch
  BIN_DIR=${INSTALL_SHOAL_BIN_DIR:-/usr/local/bin}
  SYSTEMD_DIR=${INSTALL_SHOAL_SYSTEMD_DIR:-/etc/systemd/system}
  DATA_DIR=${INSTALL_SHOAL_DATA_DIR:-}
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT

  fetch_executable
  verify_executable

  SUDO_BIN=$(sudo_for "$BIN_DIR") || exit 1
  $SUDO_BIN mkdir -p "$BIN_DIR"
  $SUDO_BIN install -m 0755 "$TMP/shoal" "$BIN_DIR/shoal"
  info "installed $BIN_DIR/shoal"

  # The daemon's arguments: --data-dir, then INSTALL_SHOAL_EXEC (split on spaces), then DAEMON ARGS.
  extra=${INSTALL_SHOAL_EXEC:-}
  # shellcheck disable=SC2086 # splitting INSTALL_SHOAL_EXEC into words is its documented meaning
  set -- $extra "$@"
  if [ -n "$DATA_DIR" ]; then set -- --data-dir "$DATA_DIR" "$@"; fi
  cmd=$(quote "$BIN_DIR/shoal")
  for a in daemon "$@"; do cmd="$cmd $(quote "$a")"; done
  info "daemon command: $cmd"

  UNIT=
  SUDO_UNIT=
  if want_unit; then
    UNIT=$SYSTEMD_DIR/shoal.service
    write_unit "$@"
  fi
  write_uninstall
  info "uninstall with $BIN_DIR/shoal-uninstall.sh"

  if [ -n "$UNIT" ]; then
    if systemd_running; then $SUDO_UNIT systemctl daemon-reload; fi
    if [ "${INSTALL_SHOAL_SKIP_ENABLE:-}" = true ]; then info "unit not enabled (INSTALL_SHOAL_SKIP_ENABLE)"; return 0; fi
    $SUDO_UNIT systemctl enable shoal.service >/dev/null
    if ! systemd_running; then info "enabled; systemd is not running here, so shoal.service starts at the next boot"; return 0; fi
    if [ "${INSTALL_SHOAL_SKIP_START:-}" = true ]; then info "enabled, not started (INSTALL_SHOAL_SKIP_START)"; return 0; fi
    $SUDO_UNIT systemctl restart shoal.service
    info "shoal.service started; logs: journalctl -u shoal"
  elif [ "${INSTALL_SHOAL_SKIP_START:-}" = true ]; then
    info "not started (INSTALL_SHOAL_SKIP_START); start it with: $cmd"
  else
    info "no systemd here: running the daemon in the foreground"
    rm -rf "$TMP"
    trap - EXIT
    exec "$BIN_DIR/shoal" daemon "$@" </dev/null
  fi
}

main "$@"
