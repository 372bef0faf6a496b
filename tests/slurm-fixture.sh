#!/bin/sh
# slurm-fixture.sh: a private single-node Slurm cluster for the srun tests.
#
#   slurm-fixture.sh up STATE_DIR     starts munged, slurmctld and slurmd;
#                                     prints SLURM_CONF=... when the node is idle
#   slurm-fixture.sh down STATE_DIR   cancels every job, stops the daemons
#
# Everything lives under STATE_DIR: the munge key and socket, the
# configuration, spool, state and logs; the daemons listen on free ports of
# 127.0.0.1. No systemd: the daemons run in the foreground (-D) in the
# background of this script, their ids in STATE_DIR/*.pid for `down`.
#
# Partitions: `debug` (the default) runs jobs; `held` is DOWN, so a job
# sent there stays queued (for the connect_timeout= test).
#
# Exit status 77: this machine cannot run Slurm (not root, or slurmctld,
# slurmd, munged missing); the caller skips.
set -eu

cmd=${1:?usage: slurm-fixture.sh up|down STATE_DIR}
B=${2:?usage: slurm-fixture.sh up|down STATE_DIR}
export SLURM_CONF="$B/slurm.conf"

stop_pid () {   # stop_pid FILE: SIGTERM, up to 10 s, then SIGKILL
  pid=$(cat "$1" 2>/dev/null) || return 0
  rm -f "$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$pid" 2>/dev/null || true
}

down () {
  if [ -f "$SLURM_CONF" ] && [ -f "$B/slurmctld.pid" ]; then
    scancel --full --quiet --partition=debug,held 2>/dev/null || true
    # Steps run under slurmstepd, which is no child of slurmd: wait for
    # the queue to empty before stopping the daemons.
    i=0
    while [ -n "$(squeue --noheader --format=%i 2>/dev/null)" ] && [ $i -lt 100 ]; do
      sleep 0.1; i=$((i + 1))
    done
  fi
  stop_pid "$B/slurmd.pid"
  stop_pid "$B/slurmctld.pid"
  stop_pid "$B/munged.pid"
}

case $cmd in
down) down; exit 0 ;;
up) ;;
*) echo "slurm-fixture.sh: unknown command $cmd" >&2; exit 2 ;;
esac

unavailable () {
  echo "slurm-fixture.sh: $*" >&2
  exit 77
}
[ "$(id -u)" -eq 0 ] || unavailable "the private cluster runs its daemons as root (the suite runs as $(id -un))"
for p in munged mungekey slurmctld slurmd srun scancel squeue sinfo; do
  command -v $p >/dev/null 2>&1 || unavailable "$p is not installed (scripts/install-deps.sh installs it)"
done

# Whatever a previous run left.
down

mkdir -p "$B/munge" "$B/state" "$B/spool" "$B/log"
chmod 0711 "$B/munge"
[ -f "$B/munge/munge.key" ] || mungekey --create --keyfile="$B/munge/munge.key"
chmod 0600 "$B/munge/munge.key"

free_port () {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ctld_port=$(free_port)
slurmd_port=$(free_port)

# Slurm refuses names of nodes it cannot resolve; localhost always is.
# Processes are tracked by process group (no cgroups here): a task's
# children are signalled with it, even once they are orphans.
# CPUs above the real count (config_overrides) let many one-task jobs run
# at once on a small machine. Accounting, cgroups, job completion logs and
# mail are off: nothing here needs them, and each needs a service.
cat > "$SLURM_CONF" <<EOF
ClusterName=execnet-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$B/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$B/state
SlurmdSpoolDir=$B/spool
SlurmctldPidFile=$B/slurmctld.own.pid
SlurmdPidFile=$B/slurmd.own.pid
SlurmctldLogFile=$B/log/slurmctld.log
SlurmdLogFile=$B/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MailProg=/bin/true
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
NodeName=localhost NodeAddr=127.0.0.1 CPUs=16 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=held Nodes=localhost MaxTime=INFINITE State=DOWN
EOF

munged --force --socket="$B/munge/munge.socket" --key-file="$B/munge/munge.key" \
       --pid-file="$B/munged.pid" --log-file="$B/log/munged.log" --seed-file="$B/munge/seed"

# -c: start without the jobs and state a previous run saved.
slurmctld -D -c > "$B/log/slurmctld.out" 2>&1 < /dev/null &
echo $! > "$B/slurmctld.pid"
slurmd -D -N localhost > "$B/log/slurmd.out" 2>&1 < /dev/null &
echo $! > "$B/slurmd.pid"

# The node registers within seconds; give it a minute on a loaded machine.
i=0
state=
while [ $i -lt 600 ]; do
  state=$(sinfo --noheader --Node --partition=debug --format=%t 2>/dev/null | head -n 1)
  [ "$state" = idle ] && break
  sleep 0.1
  i=$((i + 1))
done
if [ "$state" != idle ]; then
  echo "slurm-fixture.sh: the node did not become idle (state “$state”); see $B/log" >&2
  tail -n 5 "$B/log/slurmctld.log" "$B/log/slurmd.log" >&2 || true
  down
  exit 1
fi

echo "SLURM_CONF=$SLURM_CONF"
