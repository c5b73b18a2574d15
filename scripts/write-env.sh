#!/usr/bin/env bash
# Write .env with random secrets for the compose stack, unless one exists (never overwritten).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -e .env ]]; then
  echo "write-env: .env exists; leaving it as it is"
  exit 0
fi
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
umask 077
cat >.env <<ENV
# Written by \`make up\` on $(date -u +%Y-%m-%dT%H:%MZ). Keep it secret; see .env.example for more.
ENVIRONMENT=production
SECRET_KEY=$(random)$(random)
POSTGRES_PASSWORD=$(random)
# ADMIN_PASSWORD unset: the backend generates one and prints it once (make logs).
ENV
echo "write-env: wrote .env with a random SECRET_KEY and POSTGRES_PASSWORD"
