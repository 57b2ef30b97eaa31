#!/usr/bin/env bash
# setup-slurm.sh: start a one-node Slurm cluster on this machine, for trying and testing
# `runner sweep --executor slurm` (see docs/SLURM.md). Run it as root. It is idempotent:
# a second run finds munged, slurmctld and slurmd up and the node idle, and changes nothing.
#
#   sudo runner/scripts/setup-slurm.sh          # install if needed, configure, start, wait
#   sudo runner/scripts/setup-slurm.sh --stop   # stop slurmd and slurmctld (munged stays)
#
# This host (hostname -s) is both controller and compute node, with CPUs=$(nproc) and
# RealMemory from /proc/meminfo, in one partition "debug" (the default). Cores are the
# consumable resource (select/cons_tres, CR_Core), so N single-CPU array tasks run at once
# on N cores. There are no cgroups in a container, so processes are tracked by
# proctrack/linuxproc and task/none binds nothing.
#
# Accounting: there is no slurmdbd (it needs MySQL). Finished jobs are written to a job
# completion file (jobcomp/filetxt, /var/log/slurm/jobcomp.log), which Slurm up to 22.05
# can read back with `sacct -c`; plain `sacct` reports that accounting is disabled.
# The runner does not depend on sacct: it merges squeue, `scontrol show job` (which keeps
# finished jobs for MinJobAge = 300 s) and the run store.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
LOG_DIR=/var/log/slurm
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
RUN_DIR=/run/slurm
WAIT_SECONDS=${WAIT_SECONDS:-60}

say() { printf 'setup-slurm: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run me as root (the daemons run as root in a container: SlurmUser=root)"

# pids prints the PIDs of processes whose executable is $1 (exact name, no pattern).
pids() { pgrep -x "$1" || true; }

if [ "${1:-}" = "--stop" ]; then
	for d in slurmd slurmctld; do
		for p in $(pids "$d"); do
			say "stopping $d (pid $p)"
			kill "$p"
		done
	done
	exit 0
fi

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
	say "installing slurm-wlm and munge"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed"
	apt-get install -y -qq slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
fi

# 2. munge: a key, then the daemon.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
	say "creating /etc/munge/munge.key"
	if command -v mungekey >/dev/null; then
		mungekey --create --keyfile=/etc/munge/munge.key
	else
		dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
	fi
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
	say "starting munged"
	if id munge >/dev/null 2>&1; then
		runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
	else
		/usr/sbin/munged --force || die "munged did not start (see /var/log/munge/munged.log)"
	fi
	for _ in $(seq 20); do
		munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
		sleep 0.5
	done
	munge -n </dev/null | unmunge >/dev/null || die "munge does not work after starting munged"
fi

# 3. slurm.conf, rewritten only when its content changes.
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo) # leave 10% to the OS
mkdir -p "$CONF_DIR" "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR" "$RUN_DIR"
new=$(mktemp)
trap 'rm -f "$new"' EXIT
cat >"$new" <<EOF
# Written by runner/scripts/setup-slurm.sh: a one-node cluster on $HOST.
ClusterName=ddpmlab
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
ReturnToService=2
# No cgroups in a container.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Cores are consumable: N single-CPU tasks run at once on N cores.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# No slurmdbd: finished jobs go to a completion file (sacct -c reads it), and the
# controller keeps them for MinJobAge seconds (scontrol show job).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
MinJobAge=300
# SIGTERM, then SIGKILL this many seconds later (scancel, time limit, preemption).
KillWait=30
MaxArraySize=10001
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
changed=0
if ! cmp -s "$new" "$CONF"; then
	say "writing $CONF ($HOST: $CPUS CPUs, ${MEM_MB} MB)"
	install -m 0644 "$new" "$CONF"
	changed=1
fi
# No cgroup.conf: Slurm 22.05 has no CgroupPlugin=disabled, and with proctrack/linuxproc
# and task/none slurmd starts without one.

# 4. The daemons. A changed config restarts running ones.
start() { # start NAME: run the daemon with its log under $LOG_DIR
	local name=$1
	if [ -n "$(pids "$name")" ]; then
		[ "$changed" -eq 0 ] && return 0
		say "restarting $name for the new configuration"
		for p in $(pids "$name"); do kill "$p"; done
		for _ in $(seq 20); do [ -z "$(pids "$name")" ] && break; sleep 0.5; done
	fi
	say "starting $name (log $LOG_DIR/$name.log)"
	"/usr/sbin/$name" || die "$name did not start; see $LOG_DIR/$name.log"
}
start slurmctld
start slurmd

# 5. Wait until the node is idle (or mixed/allocated: jobs of an earlier session).
say "waiting up to ${WAIT_SECONDS}s for node $HOST"
deadline=$((SECONDS + WAIT_SECONDS))
while :; do
	state=$(sinfo --noheader --nodes="$HOST" --format=%T 2>/dev/null | head -n1 || true)
	case "$state" in
	idle | mixed | allocated | completing) break ;;
	down* | drain* | fail*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
	esac
	if [ "$SECONDS" -ge "$deadline" ]; then
		say "node $HOST is ${state:-not reported by sinfo} after ${WAIT_SECONDS}s"
		tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
		die "the cluster did not come up"
	fi
	sleep 1
done
sinfo
say "ready: partition debug, node $HOST ($state). Try: sbatch --wrap hostname"
