#!/bin/sh
# Installs the shoal executable into a bin directory.
#
#   sh install.sh [--] [DAEMON ARGS...]
#
# Where the executable comes from (first that is set):
#   INSTALL_SHOAL_BIN_PATH   a local file, e.g. dist/shoal
#   INSTALL_SHOAL_URL        a URL to download it from (curl or wget)
#   default                  ./dist/shoal next to this script
# Other settings:
#   INSTALL_SHOAL_BIN_DIR    where to put it (default /usr/local/bin)
#   INSTALL_SHOAL_SHA256     expected sha256 of the executable; the install stops on a mismatch
#   INSTALL_SHOAL_SKIP_SERVICE=true   never write a systemd unit
#   INSTALL_SHOAL_START=true          with systemd: start the daemon (with DAEMON ARGS) after installing
# Writes shoal-uninstall.sh beside the executable.
set -eu

info() { echo "[shoal] $*"; }
fatal() { echo "[shoal] error: $*" >&2; exit 1; }

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi
fi

case "$(uname -m)" in
  x86_64|amd64) ARCH=x64 ;;
  aarch64|arm64) ARCH=arm64 ;;
  *) fatal "unsupported architecture $(uname -m)" ;;
esac
[ "$(uname -s)" = Linux ] || fatal "shoal runs on Linux, not $(uname -s)"

[ "${1:-}" = "--" ] && shift
BIN_DIR=${INSTALL_SHOAL_BIN_DIR:-/usr/local/bin}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

download() { # url dest
  if command -v curl >/dev/null 2>&1; then curl -fsSL -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then wget -qO "$2" "$1"
  else fatal "need curl or wget to download $1"; fi
}

if [ -n "${INSTALL_SHOAL_BIN_PATH:-}" ]; then
  [ -f "$INSTALL_SHOAL_BIN_PATH" ] || fatal "INSTALL_SHOAL_BIN_PATH: no file at $INSTALL_SHOAL_BIN_PATH"
  cp "$INSTALL_SHOAL_BIN_PATH" "$TMP/shoal"
elif [ -n "${INSTALL_SHOAL_URL:-}" ]; then
  info "downloading $INSTALL_SHOAL_URL (linux-$ARCH)"
  download "$INSTALL_SHOAL_URL" "$TMP/shoal" || fatal "download of $INSTALL_SHOAL_URL failed"
else
  here=$(cd "$(dirname "$0")" && pwd)
  [ -f "$here/dist/shoal" ] || fatal "no executable: build one with 'npm run build' or set INSTALL_SHOAL_BIN_PATH / INSTALL_SHOAL_URL"
  cp "$here/dist/shoal" "$TMP/shoal"
fi

if [ -n "${INSTALL_SHOAL_SHA256:-}" ]; then
  got=$(sha256sum "$TMP/shoal" | cut -d' ' -f1)
  [ "$got" = "$INSTALL_SHOAL_SHA256" ] || fatal "checksum mismatch: expected $INSTALL_SHOAL_SHA256, got $got"
  info "checksum verified"
fi
chmod 0755 "$TMP/shoal"
"$TMP/shoal" version >/dev/null 2>&1 || fatal "the downloaded file does not run on this host"

$SUDO mkdir -p "$BIN_DIR"
$SUDO install -m 0755 "$TMP/shoal" "$BIN_DIR/shoal"
info "installed $BIN_DIR/shoal"

cat > "$TMP/shoal-uninstall.sh" <<UNINSTALL
#!/bin/sh
set -e
if command -v systemctl >/dev/null 2>&1 && [ -f /etc/systemd/system/shoal.service ]; then
  systemctl disable --now shoal.service || true
  rm -f /etc/systemd/system/shoal.service
  systemctl daemon-reload || true
fi
rm -f "$BIN_DIR/shoal" "$BIN_DIR/shoal-uninstall.sh"
echo "[shoal] uninstalled (data in /var/lib/shoal is kept; remove it by hand)"
UNINSTALL
$SUDO install -m 0755 "$TMP/shoal-uninstall.sh" "$BIN_DIR/shoal-uninstall.sh"

if [ "${INSTALL_SHOAL_SKIP_SERVICE:-}" != true ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  args=""
  for a in "$@"; do args="$args '$a'"; done
  $SUDO sh -c "cat > /etc/systemd/system/shoal.service" <<UNIT
[Unit]
Description=shoal orchestrator daemon
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$BIN_DIR/shoal daemon$args
KillMode=process
Restart=always
RestartSec=2
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
UNIT
  $SUDO systemctl daemon-reload
  $SUDO systemctl enable shoal.service >/dev/null
  info "systemd unit shoal.service written"
  if [ "${INSTALL_SHOAL_START:-}" = true ]; then $SUDO systemctl restart shoal.service; info "started"; fi
elif [ "${INSTALL_SHOAL_START:-}" = true ]; then
  info "no systemd here: running the daemon in the foreground"
  exec "$BIN_DIR/shoal" daemon "$@"
fi
