#!/bin/sh
# PonIO agent installer (Debian/Ubuntu). Installs the single-file agent bundle, its systemd unit
# and config dir; enrolls the host when given --panel/--token/--ca-pin. Safe to re-run (upgrade).
# docs/install.md lists exactly what it lays out.
set -eu

# --- filled in by the panel when it serves this script (GET /agent/install.sh) ----------------
# Empty in a release. When set (the one-line install, docs/security.md), the bundle is downloaded
# from PANEL_URL over a connection pinned to the panel's HTTPS key (curl --pinnedpubkey) and must
# have PANEL_BUNDLE_SHA256; the systemd units come from panel_units.
PANEL_URL=""
PANEL_SPKI_PIN=""
PANEL_BUNDLE_SHA256=""
panel_units() { return 1; }

usage() {
  cat <<'EOF'
Usage: install-agent.sh [options]
  --bundle FILE       the agent bundle (default: ponio-agent.cjs next to this script; in the
                      script the panel serves: downloaded from the panel and checked)
  --panel URL         the panel, e.g. https://panel.example.com:8443   } enroll this host
  --token TOKEN       the single-use join token from the panel          } after installing
  --ca-pin PIN        sha256:HEX fingerprint of the panel's CA          } (all three or none)
  --listen HOST:PORT  address the agent listens on (default: the port the panel expects at
                      enrollment, else 0.0.0.0:7443); a host the panel added in reverse mode
                      dials the panel instead and listens on nothing (enroll sets "connect")
  --no-start          do not enable/start the service
  --root DIR          install under DIR instead of / (packaging, tests); systemd is not touched;
                      enrolling under --root makes DIR the agent's sandbox (sandbox mode)
  --uninstall         remove everything this installer added (program, unit, config, state)
  --keep-data         with --uninstall: keep /etc/ponio-agent and /var/lib/ponio-agent
  -h, --help          this help
EOF
}

die() {
  echo "install-agent: $*" >&2
  exit 2
}

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
BUNDLE=""
PANEL=""
TOKEN=""
CA_PIN=""
LISTEN=""
NO_START=0
ROOT="/"
UNINSTALL=0
KEEP_DATA=0

while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) [ $# -ge 2 ] || die "--bundle needs a file"; BUNDLE=$2; shift 2 ;;
    --panel) [ $# -ge 2 ] || die "--panel needs a URL"; PANEL=$2; shift 2 ;;
    --token) [ $# -ge 2 ] || die "--token needs a value"; TOKEN=$2; shift 2 ;;
    --ca-pin) [ $# -ge 2 ] || die "--ca-pin needs a value"; CA_PIN=$2; shift 2 ;;
    --listen) [ $# -ge 2 ] || die "--listen needs HOST:PORT"; LISTEN=$2; shift 2 ;;
    --no-start) NO_START=1; shift ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --keep-data) KEEP_DATA=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

# --- validate everything before touching the host -----------------------------------------
for v in "$PANEL" "$TOKEN" "$CA_PIN" "$LISTEN" "$BUNDLE"; do
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

ENROLL=0
if [ -n "$PANEL$TOKEN$CA_PIN" ]; then
  [ -n "$PANEL" ] && [ -n "$TOKEN" ] && [ -n "$CA_PIN" ] || die "enrollment needs all of --panel, --token and --ca-pin"
  printf '%s' "$PANEL" | grep -Eq '^https://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$' ||
    die "--panel must look like https://HOST:PORT"
  printf '%s' "$TOKEN" | grep -Eq '^[A-Za-z0-9_.~-]{8,512}$' || die "--token has unexpected characters"
  printf '%s' "$CA_PIN" | grep -Eq '^sha256:[0-9A-Fa-f:]{64,95}$' || die "--ca-pin must be sha256:HEX"
  ENROLL=1
fi
if [ -n "$LISTEN" ]; then
  printf '%s' "$LISTEN" | grep -Eq '^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+|\*):[0-9]{1,5}$' ||
    die "--listen must be HOST:PORT, e.g. 0.0.0.0:7443"
fi

[ "$(id -u)" = 0 ] || [ "$SYSTEM" = 0 ] || die "run as root (sudo)"

OPT="$ROOT/opt/ponio-agent"
ETC="$ROOT/etc/ponio-agent"
STATE="$ROOT/var/lib/ponio-agent"
LOGS="$ROOT/var/log/ponio-agent"
UNITS="$ROOT/etc/systemd/system"
LINK="$ROOT/usr/local/bin/ponio-agent"
UNIT_NAMES="ponio-agent.service ponio-firewall-restore.service"

have_systemd() {
  [ "$SYSTEM" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

# --- uninstall ------------------------------------------------------------------------------
if [ "$UNINSTALL" = 1 ]; then
  if have_systemd; then
    for u in $UNIT_NAMES; do
      systemctl disable --now "$u" >/dev/null 2>&1 || true
    done
  fi
  for u in $UNIT_NAMES; do rm -f "$UNITS/$u"; done
  have_systemd && systemctl daemon-reload || true
  [ -L "$LINK" ] && rm -f "$LINK"
  rm -rf "$OPT" "$LOGS" "$ROOT/run/ponio-agent"
  if [ "$KEEP_DATA" = 0 ]; then
    rm -rf "$ETC" "$STATE"
    # The FTP module's proftpd snippet and the virtual-user file it points to (system mode).
    if [ "$SYSTEM" = 1 ] && grep -qs '^# Managed by PonIO' /etc/proftpd/conf.d/ponio.conf; then
      rm -f /etc/proftpd/conf.d/ponio.conf /etc/proftpd/ftpd.passwd
      have_systemd && systemctl try-reload-or-restart proftpd.service >/dev/null 2>&1 || true
    fi
    echo "PonIO agent removed (program, unit, config, certificates and state)."
  else
    echo "PonIO agent removed; kept $ETC and $STATE."
  fi
  if [ "$SYSTEM" = 0 ]; then
    # Under --root the parent directories were created by the installer too: drop the empty ones.
    for d in etc/systemd/system etc/systemd etc opt usr/local/bin usr/local usr var/lib var/log var; do
      rmdir "$ROOT/$d" 2>/dev/null || true
    done
  fi
  exit 0
fi

# --- install --------------------------------------------------------------------------------
if [ "$SYSTEM" = 1 ]; then
  command -v node >/dev/null 2>&1 || die "Node.js >= 20 is needed (Debian 13: apt-get install nodejs; Debian 12 and Ubuntu 24.04 ship 18: use NodeSource or nodejs.org)"
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "Node.js >= 20 is needed (found $(node --version); Debian 12 and Ubuntu 24.04 ship 18: use NodeSource or nodejs.org)"
  [ -x /usr/bin/node ] || die "the unit runs /usr/bin/node, which does not exist (found $(command -v node))"
fi

SELF="$0" # the copy kept in /opt/ponio-agent
UNIT_SRC=""
if [ -n "$PANEL_URL" ]; then
  # Served by the panel (piped to sh: nothing next to "$0" is ours). Everything comes from the
  # panel over connections pinned to its HTTPS key; the bundle must have the announced SHA-256.
  command -v curl >/dev/null 2>&1 || die "curl is needed: apt-get install curl"
  DL=$(mktemp -d)
  trap 'rm -rf "$DL"' EXIT
  fetch() { # PATH FILE
    curl -fsS --proto =https --pinnedpubkey "$PANEL_SPKI_PIN" -k -o "$2" "$PANEL_URL$1" ||
      die "could not download $PANEL_URL$1 (see curl's message above); nothing was installed"
  }
  panel_units "$DL" || die "this installer carries no systemd units; fetch it from the panel again"
  UNIT_SRC=$DL
  if [ -z "$BUNDLE" ]; then
    echo "Downloading the agent from $PANEL_URL …"
    fetch /agent/ponio-agent.cjs "$DL/ponio-agent.cjs"
    got=$(sha256sum "$DL/ponio-agent.cjs" | cut -d' ' -f1)
    [ "$got" = "$PANEL_BUNDLE_SHA256" ] ||
      die "the downloaded agent has SHA-256 $got, not $PANEL_BUNDLE_SHA256 as announced by the panel; nothing was installed (if the panel was just upgraded, run the command again)"
    BUNDLE="$DL/ponio-agent.cjs"
  fi
  if [ "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" != "$OPT/install-agent.sh" ]; then
    fetch /agent/install.sh "$DL/install-agent.sh"
    SELF="$DL/install-agent.sh"
  fi
fi
[ -n "$BUNDLE" ] || BUNDLE="$SCRIPT_DIR/ponio-agent.cjs"
[ -f "$BUNDLE" ] || die "agent bundle not found: $BUNDLE (use --bundle FILE)"
if [ -z "$UNIT_SRC" ]; then
  # The unit comes from the same release as the bundle (next to it), else from next to this script.
  for d in "$(dirname "$BUNDLE")" "$SCRIPT_DIR" "$SCRIPT_DIR/systemd"; do
    [ -f "$d/ponio-agent.service" ] && UNIT_SRC=$d && break
  done
fi
[ -n "$UNIT_SRC" ] || die "ponio-agent.service not found next to the bundle or this script"

umask 022
mkdir -p "$OPT" "$UNITS" "$(dirname "$LINK")"
chmod 0755 "$OPT"
# Atomic replacement: an upgrade never leaves a half-written file behind.
put() { # put MODE SRC DEST
  install -m "$1" "$2" "$3.new" && mv -f "$3.new" "$3"
}
put 0755 "$BUNDLE" "$OPT/ponio-agent.cjs"
if [ "$(cd "$(dirname "$SELF")" && pwd)/$(basename "$SELF")" != "$OPT/install-agent.sh" ]; then
  put 0755 "$SELF" "$OPT/install-agent.sh"
fi
for u in $UNIT_NAMES; do
  [ -f "$UNIT_SRC/$u" ] && put 0644 "$UNIT_SRC/$u" "$UNITS/$u"
done
ln -sfn /opt/ponio-agent/ponio-agent.cjs "$LINK"

mkdir -p "$ETC" "$STATE"
chmod 0700 "$ETC" "$STATE"
# config.json is shared with `ponio-agent enroll`, which merges its settings into it; an
# existing one (the admin's) is never overwritten.
if [ ! -e "$ETC/config.json" ]; then
  (
    umask 077
    if [ -n "$LISTEN" ]; then printf '{\n  "listen": "%s"\n}\n' "$LISTEN"; else printf '{}\n'; fi >"$ETC/config.json.new"
    mv -f "$ETC/config.json.new" "$ETC/config.json"
  )
fi
chmod 0600 "$ETC/config.json"

if [ "$ENROLL" = 1 ]; then
  echo "Enrolling with $PANEL …"
  set -- enroll --panel "$PANEL" --token "$TOKEN" --ca-pin "$CA_PIN"
  [ -n "$LISTEN" ] && set -- "$@" --listen "$LISTEN"
  # Under --root the agent's files live in DIR/etc/ponio-agent: that is its sandbox layout.
  [ "$SYSTEM" = 1 ] || set -- "$@" --sandbox "$ROOT"
  node "$OPT/ponio-agent.cjs" "$@"
fi

have_systemd && systemctl daemon-reload
# Earlier releases installed the agent as an ES module, ponio-agent.mjs; the unit and the link now
# name ponio-agent.cjs. Removed once systemd has read the new unit (an agent still running the old
# file has all of it in memory until the restart below).
rm -f "$OPT/ponio-agent.mjs"
if have_systemd; then
  if [ "$NO_START" = 0 ] && [ -f "$ETC/agent.crt" ]; then
    systemctl enable ponio-agent.service >/dev/null 2>&1
    systemctl restart ponio-agent.service
    [ -f "$UNITS/ponio-firewall-restore.service" ] && systemctl enable ponio-firewall-restore.service >/dev/null 2>&1
    echo "PonIO agent installed and running: systemctl status ponio-agent"
    exit 0
  fi
fi
echo "PonIO agent installed in $OPT."
if [ ! -f "$ETC/agent.crt" ]; then
  echo "Next: enroll it with the command the panel shows (ponio-agent enroll --panel … --token … --ca-pin …),"
  echo "then: systemctl enable --now ponio-agent"
fi
