#!/bin/sh
# PonIO panel installer (Debian/Ubuntu). Installs the built panel (dist/panel from `npm run build`)
# to /opt/ponio-panel, a dedicated system user `ponio`, the hardened systemd unit, the config in
# /etc/ponio-panel and the data dir /var/lib/ponio-panel. Safe to re-run (upgrade).
# docs/install.md lists exactly what it lays out.
set -eu

usage() {
  cat <<'EOF'
Usage: install-panel.sh [options]
  --from DIR          the built panel (default: the directory of this script, i.e. dist/panel)
  --listen HOST:PORT  HTTPS address, for a new config (default 0.0.0.0:8443)
  --public-url URL    the URL agents and browsers use to reach the panel, for a new config
  --no-start          do not enable/start the service
  --root DIR          install under DIR instead of / (packaging, tests); no user, no systemd
  --uninstall         remove everything this installer added (program, unit, config, data, user)
  --keep-data         with --uninstall: keep /etc/ponio-panel, /var/lib/ponio-panel and the user
  -h, --help          this help
EOF
}

die() {
  echo "install-panel: $*" >&2
  exit 2
}

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
FROM="$SCRIPT_DIR"
LISTEN="0.0.0.0:8443"
PUBLIC_URL=""
NO_START=0
ROOT="/"
UNINSTALL=0
KEEP_DATA=0

while [ $# -gt 0 ]; do
  case "$1" in
    --from) [ $# -ge 2 ] || die "--from needs a directory"; FROM=$2; shift 2 ;;
    --listen) [ $# -ge 2 ] || die "--listen needs HOST:PORT"; LISTEN=$2; shift 2 ;;
    --public-url) [ $# -ge 2 ] || die "--public-url needs a URL"; PUBLIC_URL=$2; shift 2 ;;
    --no-start) NO_START=1; shift ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --keep-data) KEEP_DATA=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

for v in "$LISTEN" "$PUBLIC_URL" "$FROM"; do
  case "$v" in
    *[![:print:]]*) die "arguments may not contain newlines or control characters" ;;
  esac
done
case "$ROOT" in
  /*) ;;
  *) die "--root must be an absolute path" ;;
esac
case "$ROOT" in
  *[!A-Za-z0-9_./-]* | *..*) die "--root may contain only letters, digits, '_', '-', '.', '/' and no '..'" ;;
esac
ROOT=${ROOT%/}
SYSTEM=0
[ -z "$ROOT" ] && SYSTEM=1

printf '%s' "$LISTEN" | grep -Eq '^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$' ||
  die "--listen must be HOST:PORT, e.g. 0.0.0.0:8443"
LISTEN_HOST=${LISTEN%:*}
LISTEN_HOST=$(printf '%s' "$LISTEN_HOST" | tr -d '[]')
LISTEN_PORT=${LISTEN##*:}
[ "$LISTEN_PORT" -le 65535 ] || die "--listen port must be 0-65535"
if [ -n "$PUBLIC_URL" ]; then
  printf '%s' "$PUBLIC_URL" | grep -Eq '^https://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$' ||
    die "--public-url must look like https://HOST:PORT"
fi
[ "$(id -u)" = 0 ] || [ "$SYSTEM" = 0 ] || die "run as root (sudo)"

OPT="$ROOT/opt/ponio-panel"
ETC="$ROOT/etc/ponio-panel"
DATA="$ROOT/var/lib/ponio-panel"
UNITS="$ROOT/etc/systemd/system"
LINK="$ROOT/usr/local/bin/ponio-panel"
USER_NAME=ponio

have_systemd() {
  [ "$SYSTEM" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

if [ "$UNINSTALL" = 1 ]; then
  if have_systemd; then systemctl disable --now ponio-panel.service >/dev/null 2>&1 || true; fi
  rm -f "$UNITS/ponio-panel.service"
  have_systemd && systemctl daemon-reload || true
  [ -L "$LINK" ] && rm -f "$LINK"
  rm -rf "$OPT"
  if [ "$KEEP_DATA" = 0 ]; then
    rm -rf "$ETC" "$DATA"
    if [ "$SYSTEM" = 1 ] && id "$USER_NAME" >/dev/null 2>&1; then userdel "$USER_NAME" >/dev/null 2>&1 || true; fi
    if [ "$SYSTEM" = 1 ]; then
      echo "PonIO panel removed (program, unit, config, data incl. its CA, user $USER_NAME)."
    else
      echo "PonIO panel removed from $ROOT (program, unit, config, data)."
    fi
  else
    echo "PonIO panel removed; kept $ETC, $DATA and the user $USER_NAME."
  fi
  if [ "$SYSTEM" = 0 ]; then
    for d in etc/systemd/system etc/systemd etc opt usr/local/bin usr/local usr var/lib var; do
      rmdir "$ROOT/$d" 2>/dev/null || true
    done
  fi
  exit 0
fi

[ -f "$FROM/ponio-panel.mjs" ] || die "no built panel in $FROM (run npm run build, then use dist/panel)"
UNIT_SRC=""
for d in "$FROM" "$SCRIPT_DIR" "$SCRIPT_DIR/systemd"; do
  [ -f "$d/ponio-panel.service" ] && UNIT_SRC=$d && break
done
[ -n "$UNIT_SRC" ] || die "ponio-panel.service not found"

if [ "$SYSTEM" = 1 ]; then
  command -v node >/dev/null 2>&1 || die "Node.js >= 20 is needed (Debian 13: apt-get install nodejs; Debian 12 and Ubuntu 24.04 ship 18: use NodeSource or nodejs.org)"
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "Node.js >= 20 is needed (found $(node --version); Debian 12 and Ubuntu 24.04 ship 18: use NodeSource or nodejs.org)"
  [ -x /usr/bin/node ] || die "the unit runs /usr/bin/node, which does not exist (found $(command -v node))"
  if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /var/lib/ponio-panel --no-create-home \
      --shell /usr/sbin/nologin --comment "PonIO panel" "$USER_NAME"
  fi
fi

umask 022
mkdir -p "$ROOT/opt" "$UNITS" "$(dirname "$LINK")"
# Upgrade: build the new tree next to the old one, then swap it in.
rm -rf "$OPT.new"
mkdir -p "$OPT.new"
for f in ponio-panel.mjs package.json; do cp "$FROM/$f" "$OPT.new/$f"; done
for d in node_modules views public agent; do
  [ -d "$FROM/$d" ] && cp -R "$FROM/$d" "$OPT.new/$d"
done
cp "$0" "$OPT.new/install-panel.sh"
chmod -R u=rwX,go=rX "$OPT.new"
chmod 0755 "$OPT.new/ponio-panel.mjs" "$OPT.new/install-panel.sh"
rm -rf "$OPT.old"
[ -d "$OPT" ] && mv "$OPT" "$OPT.old"
mv "$OPT.new" "$OPT"
rm -rf "$OPT.old"
install -m 0644 "$UNIT_SRC/ponio-panel.service" "$UNITS/ponio-panel.service.new"
mv -f "$UNITS/ponio-panel.service.new" "$UNITS/ponio-panel.service"
ln -sfn /opt/ponio-panel/ponio-panel.mjs "$LINK"

mkdir -p "$ETC" "$DATA"
chmod 0750 "$ETC"
chmod 0700 "$DATA"
if [ ! -e "$ETC/panel.json" ]; then
  {
    printf '{\n  "host": "%s",\n  "port": %s,\n  "dataDir": "/var/lib/ponio-panel"' "$LISTEN_HOST" "$LISTEN_PORT"
    [ -n "$PUBLIC_URL" ] && printf ',\n  "publicUrl": "%s"' "${PUBLIC_URL%/}"
    printf '\n}\n'
  } >"$ETC/panel.json.new"
  mv -f "$ETC/panel.json.new" "$ETC/panel.json"
fi
chmod 0640 "$ETC/panel.json"
if [ "$SYSTEM" = 1 ]; then
  chown root:"$USER_NAME" "$ETC" "$ETC/panel.json"
  chown "$USER_NAME":"$USER_NAME" "$DATA"
fi

if have_systemd; then
  systemctl daemon-reload
  if [ "$NO_START" = 0 ]; then
    systemctl enable ponio-panel.service >/dev/null 2>&1
    systemctl restart ponio-panel.service
    echo "PonIO panel installed and running: systemctl status ponio-panel"
    exit 0
  fi
fi
echo "PonIO panel installed in $OPT. Start it with: systemctl enable --now ponio-panel"
