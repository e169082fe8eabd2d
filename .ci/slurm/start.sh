#!/usr/bin/env bash
# Install (if needed) and start a one-node Slurm cluster on 127.0.0.1 for CI: munge, slurmctld,
# slurmd, no accounting database, no systemd, no cgroups. Needs root and Debian packages.
# State lives in $SLURM_CI_DIR (default /tmp/slurm-ci); .ci/slurm/stop.sh ends it.
# What works on such machines and why: see docs/workflow.md ("CI's Slurm cluster").
set -euo pipefail

dir=${SLURM_CI_DIR:-/tmp/slurm-ci}
host=$(hostname -s)

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The packages' own service starts fail without systemd; the daemons are started below.
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# munge: one key, owned by munge, daemon running as munge.
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile /etc/munge/munge.key 2>/dev/null || \
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    su -s /bin/sh munge -c /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null

# slurm.conf at the default path: the executor's job steps strip SLURM_* variables (SLURM_CONF).
mkdir -p "$dir"/{state,spool,log} /etc/slurm
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
MailProg=/bin/true
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
pid_alive "$dir/slurmctld.pid" || slurmctld -c
for _ in $(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
pid_alive "$dir/slurmd.pid" || slurmd

for _ in $(seq 150); do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -n1)
    [[ $state == idle ]] && break
    sleep 0.2
done
if [[ $state != idle ]]; then
    echo "slurm: node not idle (state '${state:-none}'); logs in $dir/log" >&2
    exit 1
fi
echo "slurm: one-node cluster up ($host, $cpus CPUs, $mem_mb MB); state in $dir"
