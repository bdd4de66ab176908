"""Where things live on a box: the names the rendered files and fatctl's SSH flows share.

The provisioning flow delivers secrets to `GATEWAY_ENV` and `R2_ENV` after boot (root-owned,
0600, in either order: the gateway starts once both exist and /data is mounted); health gates
run `HEALTH_COMMAND`; upgrades run `INSTALL_SCRIPT`. Keeping the names here means the box's
files and the code that talks to the box cannot drift apart.
"""

from __future__ import annotations

SERVICE_USER = "openclaw"
# A fixed uid: rclone maps every file in /data to it (FUSE needs a number at render time), and
# the same uid on every rebuild keeps ownership stable across boxes.
SERVICE_UID = 2000
# The throwaway uid npm installs OpenClaw as (in a tree root takes over afterwards): no account,
# nothing of its own on the box, so package code at install time can reach neither root's files
# nor the gateway's state. Out of useradd's range for the box's few login users (from 1000).
INSTALL_UID = 2001
OPERATOR_USER = "fatops"
CUSTOMER_USER = "customer"

GATEWAY_PORT = 18789
GATEWAY_UNIT = "openclaw-gateway.service"
GATEWAY_PATH_UNIT = "openclaw-gateway.path"
DATA_UNIT = "rclone-data.service"
SEED_UNIT = "fat-seed-data.service"
SWAP_UNIT = "fat-swap.service"

DATA_DIR = "/data"
STATE_DIR = "/var/lib/openclaw"
# The agent's workspace (AGENTS.md, its bootstrap files) is on the root disk, not on /data:
# OpenClaw bootstraps it with hard links, which the rclone FUSE mount answers with EIO (seen on
# a real box: every message failed at "link ... -> /data/AGENTS.md"). /data stays the agent's
# durable storage, reached through the agent-storage skill; the workspace is in the backups.
WORKSPACE_DIR = "/var/lib/openclaw/workspace"
# Where OpenClaw looks for its managed plugins (`<state>/npm`, a real directory): the install
# script copies the current runtime version's channel plugins there, root-owned.
PLUGINS_DIR = "/var/lib/openclaw/npm"
# WhatsApp's login (Baileys' creds.json and keys) lives on the agent's own storage, so a rebuilt
# box is still linked (OpenClaw's default is under the state dir, on the root disk).
WHATSAPP_AUTH_DIR = "/data/credentials/whatsapp/default"
CONFIG_DIR = "/etc/openclaw"
OPENCLAW_CONFIG = "/etc/openclaw/openclaw.json"
GATEWAY_ENV = "/etc/openclaw/gateway.env"  # 0600, OPENCLAW_GATEWAY_TOKEN + model keys
RCLONE_CONFIG = "/etc/rclone/rclone.conf"
R2_ENV = "/etc/rclone/r2.env"  # 0600, RCLONE_CONFIG_R2_ACCESS_KEY_ID / _SECRET_ACCESS_KEY
# rclone takes its R2 keys through the AWS SDK's credential_process (env_auth): the script reads
# R2_ENV and says the keys expire in R2_CREDENTIALS_TTL_S, so the running mount picks up a
# rotation within that time, with no remount and no gateway restart.
R2_AWS_CONFIG = "/etc/rclone/aws.conf"
R2_CREDENTIALS_SCRIPT = "/usr/local/sbin/fat-r2-credentials"
R2_CREDENTIALS_TTL_S = 30
RCLONE_CACHE = "/var/cache/rclone"
RUNTIME_ROOT = "/opt/openclaw"
SKILLS_DIR = "/opt/fat-skills"
NODE_ROOT = "/opt/node"  # /opt/node/<version>/bin/node, installed by INSTALL_SCRIPT
BROWSER_COMMAND = "/usr/local/bin/fat-browser"  # the browser and pdf skills' headless Chromium
BROWSER_EVAL = "/usr/local/lib/fat/browser-eval.mjs"

INSTALL_SCRIPT = "/usr/local/sbin/fat-install-runtime"
FIRSTBOOT_SCRIPT = "/usr/local/sbin/fat-firstboot"
HEALTH_COMMAND = "/usr/local/bin/fat-health"
SWAP_SIZE_MB = 2048

# State backups (issue 18): `fat-backup` archives OpenClaw's state with `openclaw backup create`,
# encrypts it to the agent's age recipient (the box never holds the identity, which fatctl
# delivers to BACKUP_IDENTITY, on tmpfs, only for a restore or verify) and uploads it to the
# agent's R2 prefix under BACKUP_REMOTE_DIR. BACKUP_DIR is root's (0711: the service user may
# only pass through to its own staging directories, outside the state tree OpenClaw refuses to
# write archives into).
BACKUP_SCRIPT = "/usr/local/sbin/fat-backup"
BACKUP_DIR = "/var/lib/fat-backup"
BACKUP_STATUS = "/var/lib/fat-backup/last.json"
BACKUP_CONFIG_DIR = "/etc/fat-backup"
BACKUP_RECIPIENT = "/etc/fat-backup/recipient"
BACKUP_POLICY = "/etc/fat-backup/policy.conf"
BACKUP_IDENTITY = "/run/fat-backup/identity"
BACKUP_LOCK = "/run/fat-backup.lock"
BACKUP_UNIT = "fat-backup.service"
BACKUP_TIMER = "fat-backup.timer"
BACKUP_REMOTE_DIR = "backups"  # under the agent's prefix; hidden from the agent's /data mount
# When the timer fires (systemd OnCalendar=, UTC on a Hetzner box) and how far it is spread,
# so a fleet does not upload at the same second.
BACKUP_SCHEDULE = "*-*-* 03:00:00"
BACKUP_JITTER_S = 3600
# Retention (fatctl.services.backup.retention is the rule; the box's prune mirrors it): the
# newest scheduled backup of each of the last KEEP_DAILY days and KEEP_WEEKLY ISO weeks that
# have one; manual and pre-<operation> backups for KEEP_PRE_DAYS; the newest always.
BACKUP_KEEP_DAILY = 7
BACKUP_KEEP_WEEKLY = 4
BACKUP_KEEP_PRE_DAYS = 30
