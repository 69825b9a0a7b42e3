# Shared helpers for the scripts in this folder (sourced, not run).
# Everything here targets loopback only and a Debian-like machine with apt.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${CATALOGAI_STACK_DIR:-$ROOT/.stack}"
# Tools built from source are kept outside the work tree so a fresh clone on the
# same machine reuses them; a new machine simply builds them again.
TOOLS_DIR="${CATALOGAI_TOOLS_DIR:-$HOME/.cache/catalogai}"

log() { printf '[catalogai] %s\n' "$*" >&2; }
die() { printf '[catalogai] error: %s\n' "$*" >&2; exit 1; }

# Which Supabase the local platform is (db/local-platform/supabase.sql):
# `today`, a project created now (the default, what every test runs on), or
# `classic`, one created before 2026. Both run side by side on one
# PostgreSQL cluster, each with its own database, REST server, gateway,
# Gemini emulator and key endpoint; the classic stack's ports are 100 higher.
PLATFORM="${CATALOGAI_PLATFORM:-today}"
case "$PLATFORM" in
  today) PORT_OFFSET=0; TAG="" ;;
  classic) PORT_OFFSET=100; TAG="-classic" ;;
  *) die "CATALOGAI_PLATFORM must be today or classic, not '$PLATFORM'" ;;
esac

PG_VERSION=15
# A cluster of our own, made like a Supabase project's: its superuser is
# `supabase_admin`, and `postgres`, which owns the database and runs the
# migrations, is not a superuser.
PG_CLUSTER=catalogai
PG_PORT="${CATALOGAI_PG_PORT:-54322}"
DB_NAME="${CATALOGAI_DB_NAME:-catalogai${TAG//-/_}}"
# Supabase's API gateway stand-in (the project URL); PostgREST sits behind it.
GATEWAY_PORT="${CATALOGAI_GATEWAY_PORT:-$((54321 + PORT_OFFSET))}"
REST_PORT="${CATALOGAI_REST_PORT:-$((54330 + PORT_OFFSET))}"
GEMINI_PORT="${CATALOGAI_GEMINI_PORT:-$((54340 + PORT_OFFSET))}"
# Rows per PostgREST answer at most, as a Supabase project caps them by default.
REST_MAX_ROWS=1000
# Serves the local signing keys' JWKS at Supabase Auth's path.
AUTH_PORT="${CATALOGAI_AUTH_PORT:-$((54350 + PORT_OFFSET))}"
JWKS_URL="http://127.0.0.1:$AUTH_PORT/auth/v1/.well-known/jwks.json"
# Settings for the server on this platform, written by `scripts/stack up`.
ENV_FILE="$STACK_DIR/catalogai$TAG.env"
SIGNING_KEY_FILE="$STACK_DIR/jwt_signing_key.pem"
SIGNING_KID_FILE="$STACK_DIR/jwt_signing_kid"
POSTRUST_VERSION=3.1.0
POSTRUST_BIN="$TOOLS_DIR/postrust-$POSTRUST_VERSION/bin/postrust"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then su postgres -c "$(printf '%q ' "$@")"; else sudo -u postgres "$@"; fi
}

# Runs apt-get update at most once per script run.
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# base64url without padding, as JWTs use.
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# mint_jwt SECRET CLAIMS_JSON: an HS256 token, as Supabase signs with a legacy JWT secret.
mint_jwt() {
  local header payload signature
  header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  payload=$(printf '%s' "$2" | b64url)
  signature=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$1" -binary | b64url)
  printf '%s.%s.%s\n' "$header" "$payload" "$signature"
}

# mint_es256_jwt KEY_PEM KID CLAIMS_JSON: an ES256 token, as Supabase Auth signs
# with a project's asymmetric signing key. openssl signs in DER; a JWS carries
# the raw r||s, each 32 bytes.
mint_es256_jwt() {
  local header payload r s
  header=$(printf '{"alg":"ES256","typ":"JWT","kid":"%s"}' "$2" | b64url)
  payload=$(printf '%s' "$3" | b64url)
  read -r r s < <(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$1" -binary \
    | openssl asn1parse -inform DER | awk -F: '/INTEGER/ {printf "%s ", $NF} END {print ""}')
  printf '%s.%s.%s\n' "$header" "$payload" "$(hex_to_bin "$(pad64 "$r")$(pad64 "$s")" | b64url)"
}

# pad64 HEX: left-pads a hex number to 64 digits (32 bytes).
pad64() { printf '%64s' "$1" | tr ' ' 0; }
# hex_to_bin HEX: the bytes a hex string spells.
hex_to_bin() { printf '%s' "$1" | sed 's/../\\x&/g' | xargs -0 printf '%b'; }

# mint_user_token USER_ID TTL [--hs256]: a user access token as Supabase Auth
# issues it: ES256 with the local signing key, or HS256 with the legacy secret.
mint_user_token() {
  local now claims
  now=$(date +%s)
  claims="{\"sub\":\"$1\",\"role\":\"authenticated\",\"aud\":\"authenticated\",\"iat\":$now,\"exp\":$((now + $2))}"
  if [ "${3:-}" = "--hs256" ]; then
    mint_jwt "$(cat "$STACK_DIR/jwt_secret")" "$claims"
  else
    mint_es256_jwt "$SIGNING_KEY_FILE" "$(cat "$SIGNING_KID_FILE")" "$claims"
  fi
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "$what did not become ready within ${seconds}s"
    sleep 0.2
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# db_sql ARGS...: psql on the stack's database as `postgres`, its owner (not a
# superuser, as on Supabase).
db_sql() {
  PGPASSWORD="$(cat "$STACK_DIR/postgres_password")" psql -X -q -tA -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$DB_NAME" "$@"
}
