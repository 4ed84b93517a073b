#!/usr/bin/env bash
# A one-node SLURM cluster in a scratch folder, to try regsweep-workers.sbatch on one machine
# (tests/deploy/test_slurm.py runs it). Everything it starts runs as root, answers only on
# this machine, and is stopped by the pids it recorded: nothing else is touched.
#
#   deploy/slurm/local-cluster.sh start DIR    # prints the export line for SLURM_CONF
#   SLURM_CONF=DIR/slurm.conf sbatch ...       # squeue, scontrol, scancel likewise
#   deploy/slurm/local-cluster.sh stop DIR
#
# Needs Debian's slurm-wlm (or slurmctld + slurmd + slurm-client) and munge. Settings, from the
# environment: SLURMCTLD_PORT (16817), SLURMD_PORT (16818), NODE_CPUS (the machine's),
# NODE_GPUS (2: GPUs the node offers to --gres=gpu:N; fake ones, with no device files, so the
# sbatch script's GPU request can be scheduled on a machine without GPUs).
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

stop_pid_file() {
  # Stop the daemon whose pid the file names, if it is still the program we started.
  local file=$1 program=$2 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$program" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      [ -e "/proc/$pid" ] && [ "$(cat "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f3)" != Z ] || break
      sleep 0.2
    done
    if [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$file"
}

job_processes() {
  # Processes of this cluster's jobs (slurmstepd and what it runs) outlive slurmd: each
  # has SLURM_CONF naming this folder's slurm.conf in its environment.
  local environ
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    [ "$pid" != $$ ] || continue  # this script, if its caller passed SLURM_CONF on
    if { tr '\0' '\n' <"$environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$dir/slurm.conf"; then
      echo "$pid"
    fi
  done
}

if [ "$action" = stop ]; then
  if [ -f "$dir/slurm.conf" ] && [ -s "$dir/slurmctld.pid" ]; then
    export SLURM_CONF=$dir/slurm.conf
    # What still runs is cut short: SIGKILL to every step and batch script, then no job.
    scancel --full --signal=KILL --user=root 2>/dev/null || true
    scancel --user=root 2>/dev/null || true
    for _ in $(seq 1 40); do
      [ -z "$(squeue -h -t PD,R,CG -o %i 2>/dev/null || echo busy)" ] && break
      sleep 0.5
    done
  fi
  stop_pid_file "$dir/slurmd.pid" slurmd
  stop_pid_file "$dir/slurmctld.pid" slurmctld
  stop_pid_file "$dir/munge/munged.pid" munged
  left=$(unset SLURM_CONF; job_processes)  # its own tr and grep are not the cluster's
  if [ -n "$left" ]; then
    echo "killing processes left by this cluster's jobs: $left" >&2
    # shellcheck disable=SC2086  # one pid per word
    kill -9 $left 2>/dev/null || true
  fi
  exit 0
fi
[ "$action" = start ] || usage

for tool in munged mungekey slurmctld slurmd sinfo; do
  command -v "$tool" >/dev/null || {
    echo "$tool is not installed: apt-get install slurm-wlm munge" >&2
    exit 3
  }
done
[ "$(id -u)" -eq 0 ] || { echo "run it as root (SlurmUser=root)" >&2; exit 3; }

ctld_port=${SLURMCTLD_PORT:-16817}
slurmd_port=${SLURMD_PORT:-16818}
cpus=${NODE_CPUS:-$(nproc)}
gpus=${NODE_GPUS:-2}
node=$(hostname -s)
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/jobs"
chmod 700 "$dir/munge"

# munge, with its own key and socket: another munged on this machine is left alone.
[ -s "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key" --bits=1024
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
  --seed-file="$dir/munge/munged.seed"

# slurmd drops a GPU without a device file, and refuses a file that is not a device: each
# fake GPU is a character device with /dev/null's numbers (reading or writing it does nothing).
gres=""
: >"$dir/gres.conf"
if [ "$gpus" -gt 0 ]; then
  for i in $(seq 0 $((gpus - 1))); do
    [ -c "$dir/fake-gpu$i" ] || mknod "$dir/fake-gpu$i" c 1 3
  done
  gres="Gres=gpu:$gpus"
  echo "NodeName=$node Name=gpu File=$dir/fake-gpu[0-$((gpus - 1))]" >"$dir/gres.conf"
fi

cat >"$dir/slurm.conf" <<EOF
ClusterName=regsweep-local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
# Between the time limit's SIGTERM and its SIGKILL (the default, said here on purpose).
KillWait=30
MinJobAge=600
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=4000 $gres State=UNKNOWN
PartitionName=main Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF

export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF"
for _ in $(seq 1 60); do
  state=$(sinfo -h -n "$node" -o %t 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
if [ "$state" != idle ]; then
  echo "the node did not turn idle (sinfo: ${state:-no answer}); logs in $dir" >&2
  tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
  exit 1
fi
echo "export SLURM_CONF=$SLURM_CONF"
