#!/usr/bin/env bash
# Build the CPU image with podman on a machine that reaches no container registry, run
# `serve` and `worker` containers against the host's PostgreSQL, and submit a sweep over
# REST that runs to completion. Exits 0 only when the sweep completed with exactly its budget
# and both containers stopped cleanly.
#
#   deploy/containers/run-local.sh            # as root on Debian bookworm (podman 4.3)
#
# Needs: podman, runc, mmdebstrap (apt-get install podman runc mmdebstrap), curl, python3,
# psql, and a PostgreSQL server that trusts TCP connections from 127.0.0.1 (PG_ADMIN_URL).
#
# How it gets around what the machine lacks (each step says why):
# - no registry: the base image is made from Debian's packages (mmdebstrap) and tagged
#   localhost/python:$PYTHON_VERSION-slim, which both of the Dockerfile's FROM lines then
#   resolve to (--pull=never). Debian bookworm's python3 is 3.11, hence PYTHON_VERSION=3.11.
# - no download.pytorch.org: TORCH_INDEX_CPU points at PyPI, and a pip.conf mounted into the
#   RUN steps finds the CPU wheel of torch in $TORCH_WHEELS (the machine's pip find-links)
#   and pins it, so pip never picks PyPI's multi-GB CUDA build.
# - the host's CA bundle is mounted so pip inside the build trusts the registry's proxy.
# - crun cannot set RLIMIT_NOFILE here and the machine has cgroup v1: runc, cgroupfs and a
#   containers.conf without default ulimits.
# The Dockerfile itself is built as it is.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work=${WORK_DIR:-/var/tmp/regsweep-containers}
image=${IMAGE:-localhost/regsweep:cpu}
python_version=${PYTHON_VERSION:-3.11}
base=localhost/python:${python_version}-slim
torch_wheels=${TORCH_WHEELS:-/opt/wheels}
api_port=${API_PORT:-8000}  # the image's HEALTHCHECK probes 8000: other ports skip that check
pg_admin_url=${PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
run_id=$$
database=regsweep_containers_${run_id}
token=local-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')

say() { printf '\n== %s\n' "$*"; }
die() { printf 'run-local.sh: %s\n' "$*" >&2; exit 1; }

for tool in podman runc mmdebstrap curl python3 psql; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install podman runc mmdebstrap curl postgresql-client)"
done
[ "$(id -u)" -eq 0 ] || die "run it as root (rootless podman needs subuid ranges this script does not set up)"

mkdir -p "$work"
cat >"$work/containers.conf" <<'EOF'
[containers]
# crun and runc both fail to raise RLIMIT_NOFILE in this sandbox: inherit the host's.
default_ulimits = []
EOF
export CONTAINERS_CONF=$work/containers.conf
podman=(podman --runtime /usr/sbin/runc --cgroup-manager=cgroupfs)

admin_psql() { psql "$pg_admin_url" -v ON_ERROR_STOP=1 -Atqc "$1"; }
# The scratch database's URL for psql, and for regsweep (SQLAlchemy with psycopg 3).
database_psql_url=$(python3 - "$pg_admin_url" "$database" <<'EOF'
import sys
from urllib.parse import urlsplit
print(urlsplit(sys.argv[1])._replace(path="/" + sys.argv[2]).geturl())
EOF
)
database_url=postgresql+psycopg://${database_psql_url#*://}
api=regsweep-api-$run_id
worker=regsweep-worker-$run_id

cleanup() {
  status=$?
  set +e
  for name in "$worker" "$api"; do
    "${podman[@]}" rm -f -t 5 "$name" >/dev/null 2>&1
  done
  admin_psql "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1
  exit "$status"
}
trap cleanup EXIT

# --- the base image: Debian's python3 instead of the registry's python:3.x-slim -------------
if ! "${podman[@]}" image exists "$base"; then
  say "base image $base from Debian packages (mmdebstrap)"
  mmdebstrap --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$work/rootfs.tar"
  "${podman[@]}" import "$work/rootfs.tar" "$base"
  rm -f "$work/rootfs.tar"
fi

# --- the image, from the repository's Dockerfile -------------------------------------------
build_args=(--build-arg "PYTHON_VERSION=$python_version" --build-arg VARIANT=cpu)
mounts=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
wheel=$(ls "$torch_wheels"/torch-*+cpu-cp${python_version/./}-*.whl 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$wheel" ]; then
  version=$(basename "$wheel" | cut -d- -f2)
  printf 'torch==%s\n' "$version" >"$work/constraints.txt"
  cat >"$work/pip.conf" <<'EOF'
[global]
cert = /etc/ssl/certs/ca-certificates.crt
find-links = /opt/torch-wheels
constraint = /etc/regsweep-build-constraints.txt
EOF
  build_args+=(--build-arg TORCH_INDEX_CPU=https://pypi.org/simple)
  mounts+=(-v "$torch_wheels:/opt/torch-wheels:ro" -v "$work/pip.conf:/etc/pip.conf:ro"
           -v "$work/constraints.txt:/etc/regsweep-build-constraints.txt:ro")
  say "image $image (torch $version from $wheel)"
else
  say "image $image (torch from the Dockerfile's CPU index: no CPU wheel in $torch_wheels)"
fi
# The builder stage is tagged too ($image-builder), so that its torch layer stays cached from
# build to build; each build then removes the two images it replaces (and with them the
# layers only they used: ~1.5 GB per build with changed sources).
builder=${image%:*}-builder:${image##*:}
replaced=()
for name in "$image" "$builder"; do
  replaced+=("$("${podman[@]}" image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)")
done
# --format docker keeps HEALTHCHECK and STOPSIGNAL (the OCI format drops HEALTHCHECK).
build=("${podman[@]}" build --format docker --pull=never --network host "${build_args[@]}"
       "${mounts[@]}" -f "$root/Dockerfile")
"${build[@]}" --target builder -t "$builder" "$root"
"${build[@]}" -t "$image" "$root"
current=" $("${podman[@]}" image inspect --format '{{.Id}}' "$image" "$builder" | tr '\n' ' ')"
for old in "${replaced[@]}"; do
  # Untagged now, unless the build changed nothing; kept while a container still uses it.
  if [ -n "$old" ] && [[ $current != *" $old "* ]]; then
    "${podman[@]}" rmi "$old" >/dev/null 2>&1 || true
  fi
done
"${podman[@]}" run --rm --network host --no-healthcheck "$image" --help >/dev/null

# --- serve + worker against the host's PostgreSQL --------------------------------------------
say "containers $api and $worker on database $database"
admin_psql "CREATE DATABASE $database"
"${podman[@]}" run -d --name "$api" --network host \
  -e "REGSWEEP_DATABASE_URL=$database_url" -e "REGSWEEP_API_TOKENS=ci:$token" \
  "$image" serve --host 127.0.0.1 --port "$api_port" >/dev/null
"${podman[@]}" run -d --name "$worker" --network host --init --no-healthcheck \
  -e "REGSWEEP_DATABASE_URL=$database_url" -e REGSWEEP_HEARTBEAT_S=2 \
  "$image" worker --device cpu >/dev/null

api_url=http://127.0.0.1:$api_port
for _ in $(seq 1 120); do
  curl -fsS "$api_url/readyz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "$api_url/readyz" >/dev/null || { "${podman[@]}" logs "$api" >&2; die "the API never turned ready"; }
if [ "$api_port" = 8000 ]; then
  # The image's own HEALTHCHECK, run by hand: podman schedules it with systemd timers,
  # which this machine lacks (podman logs "unable to get systemd connection" and goes on).
  health=$("${podman[@]}" healthcheck run "$api" 2>&1 || true)
  [ -z "$health" ] || [ "$health" = healthy ] || die "the image's health check says: $health"
  echo "image HEALTHCHECK: healthy"
fi

say "a sweep submitted over REST"
spec='{"name": "containers-'"$run_id"'",
  "workload": {"name": "sparse_regression", "params": {"n_samples": 200, "n_features": 20}},
  "search_space": {"l1": {"low": 0.001, "high": 0.1, "log": true}, "l2": 0.0,
                   "method": ["proximal", "loss"]},
  "training": {"epochs": 5, "batch_size": 200, "device": "cpu"},
  "pruner": {"name": "none"}, "budget": {"n_trials": 8}}'
auth=(-H "Authorization: Bearer $token")
created=$(curl -fsS "${auth[@]}" -H 'Content-Type: application/json' --data "$spec" "$api_url/v1/sweeps")
sweep_id=$(printf '%s' "$created" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
echo "sweep $sweep_id queued"
sweep=""
for _ in $(seq 1 300); do
  sweep=$(curl -fsS "${auth[@]}" "$api_url/v1/sweeps/$sweep_id")
  case $(printf '%s' "$sweep" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])') in
    completed) break ;;
    failed|cancelled|deadline_reached) break ;;
  esac
  sleep 1
done
printf '%s' "$sweep" | python3 -c '
import json, sys
sweep = json.load(sys.stdin)
print("status", sweep["status"], "trials", sweep["trials"])
assert sweep["status"] == "completed", sweep["status"]
assert sweep["trials"]["COMPLETE"] == 8, sweep["trials"]
assert sum(sweep["trials"].values()) == 8, sweep["trials"]
' || { "${podman[@]}" logs "$worker" >&2; die "the sweep did not complete with its budget"; }

# --- stop: SIGINT (the image's STOPSIGNAL); both exit 0, the worker deregisters -------------
say "stopping the containers"
"${podman[@]}" stop -t 90 "$worker" "$api" >/dev/null
for name in "$worker" "$api"; do
  code=$("${podman[@]}" inspect "$name" --format '{{.State.ExitCode}}')
  [ "$code" = 0 ] || { "${podman[@]}" logs "$name" >&2; die "$name exited with $code"; }
done
workers=$(psql "$database_psql_url" -Atqc "SELECT count(*) FROM workers")
[ "$workers" = 0 ] || die "the stopped worker is still registered"
echo "serve and worker exited 0; no worker left registered"
say "OK: image $image built, sweep $sweep_id completed over REST"
