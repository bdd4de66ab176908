#!/bin/bash
# rendered by fatctl from templates/scripts/fat-backup.sh.j2, which explains each line
set -Eeuo pipefail
umask 077

STATE_DIR=/var/lib/openclaw
BACKUP_DIR=/var/lib/fat-backup
STATUS=/var/lib/fat-backup/last.json
RECIPIENT=/etc/fat-backup/recipient
POLICY=/etc/fat-backup/policy.conf
IDENTITY=/run/fat-backup/identity
LOCK=/run/fat-backup.lock
OPENCLAW=/opt/openclaw/current/bin/openclaw
INSTALL_RUNTIME=/usr/local/sbin/fat-install-runtime
GATEWAY=openclaw-gateway.service
DATA_UNIT=rclone-data.service
RCLONE_CACHE=/var/cache/rclone
SERVICE_USER=openclaw
SERVICE_UID=2000
export AWS_CONFIG_FILE=/etc/rclone/aws.conf
RCLONE=(rclone --config /etc/rclone/rclone.conf)
ARCHIVE_SUFFIX=.tar.gz.age
KEEP_DAILY=7
KEEP_WEEKLY=4
KEEP_PRE_DAYS=30
REMOTE=
if [ -r "$POLICY" ]; then
  # shellcheck source=/dev/null
  . "$POLICY"
fi

COMMAND="${1:-}"
JSON=0
NAME=""
KIND=""
NOW=""
STOP=0
KEEP=0
ACTIVATE=0
START=1
WORK=""
GATEWAY_ON_EXIT=""

log() { printf 'fat-backup: %s\n' "$*" >&2; }
parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --kind) KIND="${2:-}"; shift ;;
      --now) NOW="${2:-}"; shift ;;
      --stop-gateway) STOP=1 ;;
      --keep-stopped) KEEP=1 ;;
      --activate) ACTIVATE=1 ;;
      --no-start) START=0 ;;
      --newest) NAME=newest ;;
      --json) JSON=1 ;;
      -*) usage ;;
      *)
        [ -z "$NAME" ] || usage
        NAME="$1"
        ;;
    esac
    shift
  done
}
usage() {
  log "usage: fat-backup run --kind K [--stop-gateway [--keep-stopped]] [--json] | list --json |"
  log "  verify NAME|--newest [--json] | restore NAME --activate [--no-start] [--json] |"
  log "  prune [--json] | prune-plan --now EPOCH | room-plan SEALED PLAIN UNPACKED"
  exit 2
}

die() {
  local message="$1"
  log "$message"
  if [ "$JSON" = 1 ]; then
    jq -n -c --arg command "$COMMAND" --arg error "$message" \
      '{command: $command, ok: false, error: $error}'
  fi
  exit 1
}

DISPLACED=""
SWAPPED=0
put_back() {
  if [ "$SWAPPED" = 1 ]; then
    SWAPPED=0
    rm -rf -- "$STATE_DIR"
    if [ -n "$DISPLACED" ] && [ -e "$DISPLACED" ]; then
      mv -- "$DISPLACED" "$STATE_DIR" || log "could not put the previous state back from $DISPLACED"
    fi
  fi
}

cleanup() {
  put_back
  if [ -n "$WORK" ]; then
    rm -rf -- "$WORK"
  fi
  if [ "$COMMAND" = restore ] || [ "$COMMAND" = verify ]; then
    rm -f -- "$IDENTITY"
  fi
  case "$GATEWAY_ON_EXIT" in
    start) start_gateway || log "could not start $GATEWAY again" ;;
    unmask) systemctl unmask --runtime "$GATEWAY" >/dev/null || log "could not unmask $GATEWAY" ;;
  esac
}
trap cleanup EXIT

RUN_AT=""
RUN_STARTED=""
run_failed() {
  jq -n -c --arg at "$RUN_AT" --arg error "$1" --argjson took "$(($(date +%s) - RUN_STARTED))" \
    '{at: $at, object: null, size_bytes: null, took_s: $took, ok: false, error: $error}' \
    | write_status || log "could not record the failure in $STATUS"
  die "$1"
}

on_error() {
  local message="unexpected failure at line $1: ${2:0:120}"
  trap - ERR
  if [ "$BASH_SUBSHELL" != 0 ]; then
    exit 1
  elif [ -n "$RUN_STARTED" ]; then
    run_failed "$message"
  fi
  die "$message"
}
trap 'on_error "$LINENO" "$BASH_COMMAND"' ERR

oc() {
  (
    if [ -r /etc/openclaw/gateway.env ]; then
      set -a
      # shellcheck source=/dev/null
      . /etc/openclaw/gateway.env
      set +a
    fi
    cd "$STATE_DIR" 2>/dev/null || cd /
    runuser -u "$SERVICE_USER" -- env HOME="$STATE_DIR" OPENCLAW_STATE_DIR="$STATE_DIR" \
      OPENCLAW_CONFIG_PATH=/etc/openclaw/openclaw.json OPENCLAW_SUPERVISOR_MODE=external \
      OPENCLAW_SERVICE_REPAIR_POLICY=external "$OPENCLAW" "$@"
  )
}

take_lock() {
  exec 9>"$LOCK"
  flock -n 9 || die "another fat-backup is running"
}

make_work() {
  install -d -m 0711 -o root -g root "$BACKUP_DIR"
  WORK="$(mktemp -d "$BACKUP_DIR/work.XXXXXX")"
  chown "$SERVICE_UID:$SERVICE_UID" "$WORK"
  chmod 0700 "$WORK"
}

need_remote() {
  [ -n "$REMOTE" ] || die "no REMOTE in $POLICY: this box has no R2 storage"
}

stop_gateway() {
  GATEWAY_ON_EXIT="$1"
  systemctl mask --runtime --now "$GATEWAY" >/dev/null
}

start_gateway() {
  GATEWAY_ON_EXIT=""
  systemctl unmask --runtime "$GATEWAY" >/dev/null
  systemctl start --no-block "$GATEWAY" >/dev/null
}

stop_data() {
  local waited=0
  while grep -rqsE '"Dirty": ?true' "$RCLONE_CACHE/vfsMeta" && [ "$waited" -lt 300 ]; do
    sleep 2
    waited=$((waited + 2))
  done
  systemctl stop "$DATA_UNIT" >/dev/null
}

prune_plan() {
  local now="$1"
  jq -r --argjson now "$now" --argjson daily "$KEEP_DAILY" --argjson weekly "$KEEP_WEEKLY" \
    --argjson pre_days "$KEEP_PRE_DAYS" '
    [ .[] | select(.IsDir | not) | .Name as $name
      | ($name | capture("^(?<stamp>[0-9]{8}T[0-9]{6}Z)-(?<kind>[a-z][a-z0-9-]{0,23})(?<ext>\\.tar\\.gz\\.age|\\.json)$")?)
      | select(. != null)
      | . + {name: $name, t: (try (.stamp | strptime("%Y%m%dT%H%M%SZ") | mktime) catch null)}
      | select(.t != null and (.t | strftime("%Y%m%dT%H%M%SZ")) == .stamp) ]
    | group_by(.stamp + "-" + .kind)
    | map({backup: (.[0].stamp + "-" + .[0].kind), kind: .[0].kind, t: .[0].t,
           names: map(.name), complete: ((map(.ext) | unique) == [".json", ".tar.gz.age"])}) as $groups
    | [ $groups[] | select((.complete | not) and $now - .t >= 86400) | .names[] ] as $leftovers
    | ($groups | map(select(.complete)) | sort_by(.t, .backup) | reverse) as $pairs
    | (reduce $pairs[] as $p ({days: [], weeks: [], keep: [($pairs[0].backup // empty)]};
        if $p.kind != "scheduled" then
          (if $now - $p.t < $pre_days * 86400 then .keep += [$p.backup] else . end)
        else
          ($p.t | strftime("%Y-%m-%d")) as $d | ($p.t | strftime("%G-%V")) as $w
          | (if (.days | index([$d])) == null and (.days | length) < $daily
             then .days += [$d] | .keep += [$p.backup] else . end)
          | (if (.weeks | index([$w])) == null and (.weeks | length) < $weekly
             then .weeks += [$w] | .keep += [$p.backup] else . end)
        end) | .keep) as $keep
    | ($leftovers + [ $pairs[] | select(.backup as $b | $keep | index([$b]) | not) | .names[] ])
    | unique[]'
}

listing() {
  local out err
  err="$(mktemp)"
  if out="$("${RCLONE[@]}" lsjson --files-only "$REMOTE" 2>"$err")"; then
    rm -f -- "$err"
    printf '%s' "$out"
  elif grep -q 'directory not found' "$err"; then
    rm -f -- "$err"
    printf '[]'
  else
    log "rclone lsjson $REMOTE: $(tail -n1 "$err")"
    rm -f -- "$err"
    return 1
  fi
}

pairs_json() {
  jq -c --arg suffix "$ARCHIVE_SUFFIX" '
    [ .[] | .Name as $n | select($n | test("^[0-9]{8}T[0-9]{6}Z-[a-z][a-z0-9-]{0,23}(\\.tar\\.gz\\.age|\\.json)$"))
      | {name: ($n | sub("(\\.tar\\.gz\\.age|\\.json)$"; "")), archive: ($n | endswith($suffix)), size: .Size} ]
    | group_by(.name)
    | map(select(length == 2)
          | .[0].name as $name
          | {name: $name, kind: ($name | sub("^[0-9]{8}T[0-9]{6}Z-"; "")),
             at: ($name[0:4] + "-" + $name[4:6] + "-" + $name[6:8] + "T" + $name[9:11] + ":"
                  + $name[11:13] + ":" + $name[13:15] + "Z"),
             object: "backups/\($name)\($suffix)",
             size_bytes: (map(select(.archive)) | .[0].size)})
    | sort_by(.name) | reverse'
}

ROOM_MARGIN_KB=$((512 * 1024))
ROOM_FALLBACK_FACTOR=30
room_to_fetch_kb() {
  echo $(((2 * $1 + 1023) / 1024 + ROOM_MARGIN_KB))
}
room_to_unpack_kb() {
  local plain="$1" unpacked="$2"
  if [ "$unpacked" -lt "$plain" ]; then
    unpacked=$((ROOM_FALLBACK_FACTOR * plain))
  fi
  echo $(((unpacked + unpacked / 8 + 1023) / 1024 + ROOM_MARGIN_KB))
}
need_room() {
  local need_kb="$1" what="$2" free_kb
  install -d -m 0711 -o root -g root "$BACKUP_DIR"
  free_kb="$(df -Pk "$BACKUP_DIR" | awk 'NR == 2 { print $4 }')"
  if [ "$free_kb" -lt "$need_kb" ]; then
    die "not enough disk to $what: $((free_kb / 1024)) MiB free in $BACKUP_DIR, $((need_kb / 1024)) MiB needed"
  fi
}

check_name() {
  [[ "$1" =~ ^[0-9]{8}T[0-9]{6}Z-[a-z][a-z0-9-]{0,23}$ ]] || die "not a backup name: ${1:0:60}"
}

fetch_and_decrypt() {
  local name="$1" expected actual
  local sidecar sealed plain unpacked
  [ -s "$IDENTITY" ] || die "no identity at $IDENTITY: fatctl delivers it for restore and verify"
  sidecar="$("${RCLONE[@]}" cat "$REMOTE/$name.json" 2>/dev/null)" || true
  expected="$(printf '%s' "$sidecar" | jq -r '.sha256 // empty' 2>/dev/null)" || true
  [ -n "$expected" ] || die "backup $name has no sidecar in R2: not a complete backup"
  sealed="$(printf '%s' "$sidecar" | jq -r '.size_bytes // 0 | floor' 2>/dev/null)" || sealed=0
  need_room "$(room_to_fetch_kb "${sealed:-0}")" "fetch $name"
  make_work
  "${RCLONE[@]}" copyto "$REMOTE/$name$ARCHIVE_SUFFIX" "$WORK/$name$ARCHIVE_SUFFIX" \
    || die "could not download $name$ARCHIVE_SUFFIX"
  actual="$(sha256sum "$WORK/$name$ARCHIVE_SUFFIX" | cut -d' ' -f1)"
  [ "$actual" = "$expected" ] || die "backup $name does not match its sidecar's sha256"
  age -d -i "$IDENTITY" -o "$WORK/archive.tar.gz" "$WORK/$name$ARCHIVE_SUFFIX" \
    || die "could not decrypt $name with the delivered identity"
  rm -f -- "$WORK/$name$ARCHIVE_SUFFIX"
  chown "$SERVICE_UID:$SERVICE_UID" "$WORK/archive.tar.gz"
  plain="$(stat -c %s "$WORK/archive.tar.gz")"
  unpacked="$(gzip -l "$WORK/archive.tar.gz" 2>/dev/null | awk 'NR == 2 { print $2 }')" || true
  need_room "$(room_to_unpack_kb "$plain" "${unpacked:-0}")" "unpack $name"
}

restore_to_scratch() {
  local out root manifest refused rel
  out="$(oc backup restore "$WORK/archive.tar.gz" --target "$WORK/restored" --json)" \
    || die "openclaw backup restore refused the archive"
  root="$(printf '%s' "$out" | jq -r '.archiveRoot // empty')"
  RESTORE_WARNINGS="$(printf '%s' "$out" | jq -c '.warnings // []')"
  manifest="$WORK/restored/$root/manifest.json"
  [[ -n "$root" && -f "$manifest" ]] || die "the restored archive has no manifest.json"
  refused="$(jq -r --arg state "$STATE_DIR" --arg config /etc/openclaw/openclaw.json '
    [ .assets[] | select(.sourcePath != $state and (.sourcePath | startswith($state + "/") | not)
                         and .sourcePath != $config) | "\(.kind) \(.sourcePath)" ] | join(", ")' \
    "$manifest")"
  [ -z "$refused" ] || die "the archive holds assets outside $STATE_DIR: $refused"
  rel="$(jq -r --arg state "$STATE_DIR" \
    '[.assets[] | select(.kind == "state" and .sourcePath == $state) | .archivePath] | first // empty' \
    "$manifest")"
  [[ -n "$rel" && "$rel" != *..* ]] || die "the archive has no state asset for $STATE_DIR"
  ASSET="$WORK/restored/$rel"
  [ -d "$ASSET" ] || die "the archive's state asset is missing from its payload"
}

preflight() {
  local status
  status="$(oc database preflight "$ASSET/state/openclaw.sqlite" --json 2>/dev/null \
    | jq -r '.status // empty' 2>/dev/null)" || true
  case "$status" in
    exact | startup-repairable | migration-required) PREFLIGHT="$status" ;;
    *) die "this box's OpenClaw cannot open the backup's state (preflight: ${status:-no answer})" ;;
  esac
}

write_status() {
  local tmp
  install -d -m 0711 -o root -g root "$BACKUP_DIR"
  tmp="$(mktemp "$BACKUP_DIR/last.XXXXXX")"
  jq -c '{at, object, size_bytes, took_s, ok, error}' >"$tmp"
  chmod 0644 "$tmp"
  mv -f -- "$tmp" "$STATUS"
}

cmd_run() {
  local kind="$KIND" stop="$STOP" keep="$KEEP" started now stamp name archive sealed size sha
  local runtime sidecar gateway=untouched pruned=null prune_error=null warnings assets
  [[ -z "$NAME" && "$kind" =~ ^[a-z][a-z0-9-]{0,23}$ ]] || usage
  [ "$keep" = 0 ] || [ "$stop" = 1 ] || usage
  started="$(date +%s)"
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  stamp="$(date -u -d "@$started" +%Y%m%dT%H%M%SZ)"
  name="$stamp-$kind"
  RUN_AT="$now"
  RUN_STARTED="$started"
  take_lock
  need_remote
  [ -s "$RECIPIENT" ] || run_failed "no recipient at $RECIPIENT"
  local state_kb free_kb
  state_kb="$(du -sk "$STATE_DIR" 2>/dev/null | cut -f1)" || state_kb=0
  install -d -m 0711 -o root -g root "$BACKUP_DIR"
  free_kb="$(df -Pk "$BACKUP_DIR" | awk 'NR == 2 { print $4 }')"
  if [ "$free_kb" -lt $((2 * state_kb + 512 * 1024)) ]; then
    run_failed "not enough disk: ${free_kb} KB free, $((2 * state_kb + 512 * 1024)) KB needed"
  fi
  if [ "$stop" = 1 ]; then
    stop_gateway start
    gateway=stopped
  fi
  make_work
  install -d -m 0700 -o "$SERVICE_UID" -g "$SERVICE_UID" "$WORK/staging"
  local created
  created="$(oc backup create --output "$WORK/staging" --verify --json)" \
    || run_failed "openclaw backup create failed"
  archive="$(printf '%s' "$created" | jq -r '.archivePath // empty')"
  [[ -n "$archive" && -f "$archive" ]] || run_failed "openclaw backup create wrote no archive"
  warnings="$(printf '%s' "$created" | jq '.warnings // [] | length')"
  assets="$(printf '%s' "$created" | jq '.assets // [] | length')"
  sealed="$WORK/$name$ARCHIVE_SUFFIX"
  age -R "$RECIPIENT" -o "$sealed" "$archive" || run_failed "age could not encrypt the archive"
  rm -f -- "$archive"
  size="$(stat -c %s "$sealed")"
  sha="$(sha256sum "$sealed" | cut -d' ' -f1)"
  runtime="$(basename "$(readlink /opt/openclaw/current 2>/dev/null || echo none)")"
  sidecar="$WORK/$name.json"
  jq -n -c --arg name "$name" --arg at "$now" --arg kind "$kind" --argjson size "$size" \
    --arg sha "$sha" --arg runtime "$runtime" --arg recipient "$(head -n1 "$RECIPIENT")" \
    --argjson warnings "$warnings" --argjson assets "$assets" \
    '{name: $name, at: $at, kind: $kind, size_bytes: $size, sha256: $sha, runtime: $runtime,
      recipient: $recipient, warnings: $warnings, assets: $assets,
      format: "openclaw-backup-tar.gz+age"}' >"$sidecar"
  "${RCLONE[@]}" copyto "$sealed" "$REMOTE/$name$ARCHIVE_SUFFIX" \
    || run_failed "could not upload $name$ARCHIVE_SUFFIX"
  "${RCLONE[@]}" copyto "$sidecar" "$REMOTE/$name.json" || run_failed "could not upload $name.json"
  if [ "$stop" = 1 ] && [ "$keep" = 1 ]; then
    GATEWAY_ON_EXIT=""
    stop_data
  elif [ "$stop" = 1 ]; then
    start_gateway
    gateway=restarted
  fi
  if [ "$kind" = scheduled ]; then
    if pruned="$(do_prune | jq -R -s -c 'split("\n") | map(select(length > 0))')"; then
      :
    else
      prune_error='"prune failed"'
      pruned=null
    fi
  fi
  jq -n -c --arg name "$name" --arg kind "$kind" --arg at "$now" \
    --arg object "backups/$name$ARCHIVE_SUFFIX" --argjson size "$size" \
    --arg sha "$sha" --argjson took "$(($(date +%s) - started))" --arg runtime "$runtime" \
    --arg gateway "$gateway" --argjson pruned "$pruned" --argjson prune_error "$prune_error" \
    '{command: "run", ok: true, name: $name, kind: $kind, object: $object, at: $at,
      size_bytes: $size, sha256: $sha, took_s: $took, runtime: $runtime, gateway: $gateway,
      pruned: $pruned, prune_error: $prune_error, error: null}' >"$WORK/result.json"
  write_status <"$WORK/result.json"
  if [ "$JSON" = 1 ]; then
    cat "$WORK/result.json"
  else
    log "backed up $name ($size bytes) to $REMOTE"
  fi
}

do_prune() {
  local doomed name
  doomed="$(listing | prune_plan "$(date +%s)")" || return 1
  while IFS= read -r name; do
    [ -n "$name" ] || continue
    "${RCLONE[@]}" deletefile "$REMOTE/$name" || return 1
    printf 'backups/%s\n' "$name"
  done <<<"$doomed"
}

cmd_prune() {
  [ -z "$NAME" ] || usage
  take_lock
  need_remote
  local deleted
  deleted="$(do_prune)" || die "prune failed"
  if [ "$JSON" = 1 ]; then
    printf '%s' "$deleted" | jq -R -s -c \
      '{command: "prune", ok: true, deleted: (split("\n") | map(select(length > 0))), error: null}'
  else
    printf '%s\n' "$deleted"
  fi
}

cmd_list() {
  [[ -z "$NAME" && "$JSON" = 1 ]] || usage
  need_remote
  local all pairs
  all="$(listing)" || die "could not list $REMOTE"
  pairs="$(printf '%s' "$all" | pairs_json)"
  printf '%s' "$all" | jq -c --argjson pairs "$pairs" '
    [ .[] | .Name | select(test("^[0-9]{8}T[0-9]{6}Z-[a-z][a-z0-9-]{0,23}(\\.tar\\.gz\\.age|\\.json)$"))
      | sub("(\\.tar\\.gz\\.age|\\.json)$"; "") ] | unique
    | {command: "list", ok: true, backups: $pairs,
       incomplete: map(select(. as $n | $pairs | map(.name) | index([$n]) | not))}'
}

newest_name() {
  local all
  all="$(listing)" || return 1
  printf '%s' "$all" | pairs_json | jq -r '.[0].name // empty'
}

cmd_verify() {
  local name="$NAME"
  [ -n "$name" ] || usage
  take_lock
  need_remote
  if [ "$name" = newest ]; then
    name="$(newest_name)" || die "could not list $REMOTE"
    [ -n "$name" ] || die "no complete backup in $REMOTE"
  fi
  check_name "$name"
  fetch_and_decrypt "$name"
  local assets
  assets="$(oc backup verify "$WORK/archive.tar.gz" --json | jq '.assets // [] | length')" \
    || die "openclaw backup verify refused $name"
  restore_to_scratch
  preflight
  if [ "$JSON" = 1 ]; then
    jq -n -c --arg name "$name" --argjson assets "$assets" --arg preflight "$PREFLIGHT" \
      '{command: "verify", ok: true, name: $name, assets: $assets, preflight: $preflight,
        error: null}'
  else
    log "backup $name opens: $assets assets, preflight $PREFLIGHT"
  fi
}

cmd_restore() {
  local name="$NAME" start="$START" stamp displaced
  [[ -n "$name" && "$name" != newest ]] || usage
  [ "$ACTIVATE" = 1 ] || die "restore replaces the live state: say --activate (verify only checks)"
  check_name "$name"
  take_lock
  need_remote
  fetch_and_decrypt "$name"
  restore_to_scratch
  preflight
  if [ "$start" = 1 ]; then
    stop_gateway start
  else
    stop_gateway unmask
  fi
  stamp="$(date -u +%Y%m%dT%H%M%S.%NZ)"
  displaced="$BACKUP_DIR/displaced-$stamp"
  DISPLACED=""
  if [ -e "$STATE_DIR" ]; then
    DISPLACED="$displaced"
  fi
  SWAPPED=1
  if [ -n "$DISPLACED" ]; then
    mv -- "$STATE_DIR" "$DISPLACED"
  fi
  mv -- "$ASSET" "$STATE_DIR"
  chown -R "$SERVICE_UID:$SERVICE_UID" "$STATE_DIR"
  chmod 0700 "$STATE_DIR"
  "$INSTALL_RUNTIME" --sync-plugins >&2
  local said
  said="$(mktemp)"
  if ! oc doctor --non-interactive >"$said" 2>&1; then
    cat "$said" >&2
    put_back
    local last
    last="$({ grep -v '^[[:space:]│├╰◇]*$' "$said" || true; } | tail -n 1 | cut -c1-200)"
    rm -f -- "$said"
    die "openclaw doctor failed on the restored state (the previous state is back): $last"
  fi
  cat "$said" >&2
  rm -f -- "$said"
  SWAPPED=0
  find "$BACKUP_DIR" -maxdepth 1 -name 'displaced-*' ! -path "$displaced" -exec rm -rf -- {} +
  local started=false
  if [ "$start" = 1 ]; then
    start_gateway
    started=true
  else
    GATEWAY_ON_EXIT=""
    systemctl unmask --runtime "$GATEWAY" >/dev/null
  fi
  if [ "$JSON" = 1 ]; then
    jq -n -c --arg name "$name" --arg preflight "$PREFLIGHT" --arg displaced "$DISPLACED" \
      --argjson started "$started" --argjson warnings "$RESTORE_WARNINGS" \
      '{command: "restore", ok: true, name: $name, preflight: $preflight,
        displaced: $displaced, started: $started, warnings: $warnings, error: null}'
  else
    log "restored $name; the previous state is at ${DISPLACED:-nowhere (there was none)}"
  fi
}

shift || true
if [ "$COMMAND" = room-plan ]; then
  [[ $# -eq 3 && "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ && "$3" =~ ^[0-9]+$ ]] || usage
  room_to_fetch_kb "$1"
  room_to_unpack_kb "$2" "$3"
  exit 0
fi
parse_args "$@"
case "$COMMAND" in
  run) cmd_run ;;
  list) cmd_list ;;
  verify) cmd_verify ;;
  restore) cmd_restore ;;
  prune) cmd_prune ;;
  prune-plan)
    [[ -z "$NAME" && "$NOW" =~ ^[0-9]+$ ]] || usage
    prune_plan "$NOW"
    ;;

  *) usage ;;
esac
