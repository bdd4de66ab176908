#!/usr/bin/env bash
# The README's first command: fatctl's main job on the embedded defaults, on a fresh Debian 12
# machine (as root). Installs what it needs, starts the sandbox cloud (Hetzner and Cloudflare
# API emulators, moto S3, real systemd-nspawn boxes from the cached golden image), provisions
# one agent that answers its owner on (the sandbox's) Telegram with the plan's model, shows its
# status and health, runs a command on it over SSH, shows a message round trip through the real
# OpenClaw gateway, and leaves it running.
# Idempotent: a second run reuses packages, the image, the sandbox and the agent. Its state
# (master key, state database, sandbox) lives in a directory of its own, so the teardown it
# prints removes all of it and the next run starts clean: the sandbox's cloud and fatctl's
# database disappear together (a database that outlived its cloud would list agents whose
# servers are gone, and a destroyed agent's name is never reused).
#   DEMO_AGENT=name (default demo)   FATCTL_DATA_DIR=dir (default ~/.local/share/fatctl-demo)
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/machine.sh
. scripts/machine.sh
agent=${DEMO_AGENT:-demo}

preflight scripts/demo.sh
if [ "${1:-}" = --preflight ]; then
  exit 0
fi

install_system_packages

log "python packages"
if ! fatctl_from_here || ! command -v fatctl >/dev/null; then
  python3 -m pip install -q --disable-pip-version-check -c .ci/constraints.txt -e '.[test]'
fi

data_dir=${FATCTL_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/fatctl-demo}
export FATCTL_DATA_DIR=$data_dir
mkdir -p "$data_dir"
chmod 700 "$data_dir"

log "master key"
if [ ! -s "$data_dir/master.key" ]; then
  (umask 077 && fatctl secrets generate-master-key >"$data_dir/master.key")
fi
FATCTL_MASTER_KEY=$(cat "$data_dir/master.key")
export FATCTL_MASTER_KEY

log "state database"
fatctl db upgrade

raise_box_limits

log "sandbox cloud (the first run builds the golden image: several minutes)"
fatctl sandbox up --boxes
env_file=${FATCTL_SANDBOX_DIR:-$data_dir/sandbox}/sandbox.env
set -a
# shellcheck disable=SC1090  # written by `fatctl sandbox up`
. "$env_file"
set +a

log "operator key"
if ! fatctl keys list --json | grep -q fatctl-sandbox-operator; then
  fatctl keys add --operator --file "$FATCTL_OPERATOR_KEY_FILE.pub" --label fatctl-sandbox-operator
fi

log "the platform's model key (issued by the sandbox's model provider)"
if ! fatctl secrets list --json | grep -q '"fireworks-api-key"'; then
  fatctl sandbox model-key | fatctl secrets set fireworks-api-key
fi

log "$agent: a Telegram bot (from the sandbox's Telegram) and its owner as the allowed sender"
if ! fatctl agents show "$agent" >/dev/null 2>&1; then
  fatctl agents create "$agent" --owner demo@example.com
fi
bot_file=$data_dir/$agent-bot.json
if [ ! -s "$bot_file" ]; then
  (umask 077 && fatctl sandbox telegram-bot --json >"$bot_file")
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$bot_file" |
    fatctl channels add "$agent" telegram
fi
bot_id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["bot_id"])' "$bot_file")
fatctl senders add "$agent" 4242

log "provision $agent"
fatctl provision "$agent" --owner demo@example.com

log "status"
fatctl status "$agent"

log "ssh"
fatctl ssh "$agent" -- systemctl is-active openclaw-gateway

log "a message from the owner (Telegram user 4242) to $agent, and the agent's reply"
fatctl sandbox telegram-send "$bot_id" "Hello, are you there?" --from 4242

cat <<MSG

The agent $agent is running. Explore it with (in this shell, after sourcing the env file):
  set -a; . $env_file; set +a; export FATCTL_DATA_DIR=$data_dir FATCTL_MASTER_KEY=\$(cat $data_dir/master.key)
  fatctl ssh $agent
  fatctl status
Tear everything down (the sandbox, and the demo's key, database and sandbox state) with:
  FATCTL_DATA_DIR=$data_dir fatctl sandbox down && rm -rf $data_dir
MSG
