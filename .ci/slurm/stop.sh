#!/usr/bin/env bash
# Stop the CI Slurm cluster of start.sh: cancel leftover jobs, end the daemons by their pid files.
set -uo pipefail
dir=${SLURM_CI_DIR:-/tmp/slurm-ci}
command -v scancel >/dev/null && scancel --user="$(id -un)" 2>/dev/null
for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" /run/munge/munged.pid; do
    if [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
done
echo "slurm: stopped"
