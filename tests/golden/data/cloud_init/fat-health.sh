#!/bin/bash
# rendered by fatctl from templates/scripts/fat-health.sh.j2, which explains each line
set -uo pipefail

channel_status() {
  if [ -r /etc/openclaw/gateway.env ]; then
    local -a as=()
    if [ "$(id -un)" != openclaw ]; then
      as=(runuser -u openclaw --)
    fi
    (set -a
      # shellcheck source=/dev/null
      . <(grep -E '^OPENCLAW_GATEWAY_TOKEN[=]' /etc/openclaw/gateway.env)
      set +a
      cd /var/lib/openclaw 2>/dev/null || cd /
      timeout 30 "${as[@]}" env HOME=/var/lib/openclaw OPENCLAW_STATE_DIR=/var/lib/openclaw \
        OPENCLAW_CONFIG_PATH=/etc/openclaw/openclaw.json \
        /opt/openclaw/current/bin/openclaw channels status --json 2>/dev/null)
  elif [ "$(id -u)" != 0 ] && sudo -n true 2>/dev/null; then
    sudo -n /usr/local/bin/fat-health --channel-status
  fi
}

JSON=0
case "${1:-}" in
  --json) JSON=1 ;;
  --channel-status)
    channel_status
    exit $?
    ;;
esac
MIN_DISK_MB=512
MIN_MEM_MB=64
problems=()

gateway="$(systemctl is-active openclaw-gateway.service 2>/dev/null)"
gateway="${gateway:-unknown}"
ready=false
failing_json='[]'
if [ "$gateway" != active ]; then
  problems+=("gateway unit is ${gateway}")
else
  body="$(curl -sS -m 5 -w '\n%{http_code}' http://127.0.0.1:18789/readyz 2>/dev/null)"
  code="${body##*$'\n'}"
  body="${body%$'\n'*}"
  failing_json="$(printf '%s' "$body" | jq -c '[.failing[]? | tostring]' 2>/dev/null)"
  failing_json="${failing_json:-[]}"
  if [ "$code" = 200 ]; then
    ready=true
  elif [ "$code" = 000 ] || [ -z "$code" ]; then
    problems+=("gateway not answering on 127.0.0.1:18789")
  else
    problems+=("gateway not ready (HTTP ${code}): $(printf '%s' "$failing_json" | jq -r 'join(", ")')")
  fi
fi
status_json='null'
if [ "$ready" = true ]; then
  status_json="$(channel_status | jq -c 'select(type == "object")' 2>/dev/null)"
  status_json="${status_json:-null}"
fi
channels_json="$(jq -n -c --argjson failing "$failing_json" --argjson ready "$ready" \
  --argjson status "$status_json" '
  def account($ch): ($status.channelAccounts[$ch] // []) as $all
    | ($status.channelDefaultAccountId[$ch] // "default") as $id
    | (($all | map(select(.accountId == $id)) | first) // $all[0]);
  $ARGS.positional | map(. as $ch | {($ch): (
    if ($failing | any(. == $ch or startswith($ch + ":"))) then "failing"
    elif ($ready | not) then "unknown"
    elif $status == null then "ready"
    else account($ch) as $a
      | if $a == null then "not-running"
        elif $a.linked == false then "not-linked"
        elif $a.connected == true then "ready"
        elif $a.running != true then "not-running"
        else "not-connected" end
    end)}) | add // {}' \
  --args -- slack telegram whatsapp )"
channels_json="${channels_json:-{\}}"
while IFS= read -r problem; do
  problems+=("$problem")
done < <(jq -r -n --argjson channels "$channels_json" --argjson status "$status_json" '
  $channels | to_entries[] | select(.value == "not-running" or .value == "not-connected")
  | .key as $ch | ($status.channelAccounts[$ch] // [] | map(.lastError // empty) | first) as $why
  | "\($ch) \(.value | sub("-"; " "))" + (if $why then ": \($why | .[:160])" else "" end)')

runtime="$(readlink /opt/openclaw/current 2>/dev/null)"
runtime="$(basename "${runtime:-none}")"
if [ ! -x /opt/openclaw/current/bin/openclaw ]; then
  problems+=("no runtime at /opt/openclaw/current")
fi

if findmnt --mountpoint /data --types fuse.rclone >/dev/null; then
  data_mounted=true
else
  data_mounted=false
  problems+=("/data is not mounted")
fi

disk_free_mb="$(df -Pm / | awk 'NR == 2 { print $4 }')"
disk_free_mb="${disk_free_mb:-0}"
if [ "$disk_free_mb" -lt "$MIN_DISK_MB" ]; then
  problems+=("low disk: ${disk_free_mb} MB free")
fi
mem_available_mb="$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)"
mem_available_mb="${mem_available_mb:-0}"
if [ "$mem_available_mb" -lt "$MIN_MEM_MB" ]; then
  problems+=("low memory: ${mem_available_mb} MB available")
fi

gateway_restarts=0
gateway_memory=null
gateway_memory_peak=null
cgroup=''
while IFS='=' read -r key value; do
  case "$key" in
    NRestarts) [[ "$value" =~ ^[0-9]+$ ]] && gateway_restarts="$value" ;;
    MemoryCurrent) [[ "$value" =~ ^[0-9]+$ ]] && gateway_memory="$value" ;;
    MemoryPeak) [[ "$value" =~ ^[0-9]+$ ]] && gateway_memory_peak="$value" ;;
    ControlGroup) cgroup="$value" ;;
  esac
done < <(systemctl show -p NRestarts -p MemoryCurrent -p MemoryPeak -p ControlGroup \
  openclaw-gateway.service 2>/dev/null)
if [ "$gateway_memory_peak" = null ] && [ -n "$cgroup" ]; then
  peak="$(cat "/sys/fs/cgroup${cgroup}/memory.peak" 2>/dev/null)"
  [[ "$peak" =~ ^[0-9]+$ ]] && gateway_memory_peak="$peak"
fi

backup_json="$(jq -c 'select(type == "object") | {at, object, size_bytes, took_s, ok, error}' \
  /var/lib/fat-backup/last.json 2>/dev/null)"
backup_json="${backup_json:-null}"

healthy=true
if [ "${#problems[@]}" -gt 0 ]; then
  healthy=false
fi

if [ "$JSON" = 1 ]; then
  jq -n -c \
    --argjson healthy "$healthy" \
    --arg gateway "$gateway" \
    --arg runtime_version "$runtime" \
    --argjson data_mounted "$data_mounted" \
    --argjson disk_free_mb "$disk_free_mb" \
    --argjson mem_available_mb "$mem_available_mb" \
    --argjson ready "$ready" \
    --argjson channels "$channels_json" \
    --argjson backup "$backup_json" \
    --argjson gateway_restarts "$gateway_restarts" \
    --argjson gateway_memory "$gateway_memory" \
    --argjson gateway_memory_peak "$gateway_memory_peak" \
    '{healthy: $healthy, gateway: $gateway, runtime_version: $runtime_version,
      data_mounted: $data_mounted, disk_free_mb: $disk_free_mb,
      mem_available_mb: $mem_available_mb, ready: $ready, channels: $channels,
      backup: $backup, gateway_restarts: $gateway_restarts,
      gateway_memory_bytes: $gateway_memory, gateway_memory_peak_bytes: $gateway_memory_peak,
      problems: $ARGS.positional}' \
    --args -- "${problems[@]}"
else
  printf 'healthy: %s\ngateway: %s\nruntime: %s\ndata mounted: %s\n' \
    "$healthy" "$gateway" "$runtime" "$data_mounted"
  printf 'disk free: %s MB\nmemory available: %s MB\n' "$disk_free_mb" "$mem_available_mb"
  printf 'ready: %s\nchannels: %s\nbackup: %s\n' "$ready" "$channels_json" "$backup_json"
  printf 'gateway restarts: %s\ngateway memory: %s bytes (peak %s)\n' \
    "$gateway_restarts" "$gateway_memory" "$gateway_memory_peak"
  for problem in "${problems[@]}"; do
    printf 'problem: %s\n' "$problem"
  done
fi

if [ "$healthy" = true ]; then
  exit 0
fi
exit 1
