#!/usr/bin/env bash
# End-to-end checks of an OCI runtime through real clients: Docker 20.10 (dockerd +
# containerd), containerd 1.6's ctr and podman 4.3, each with the runtime under test and,
# beside it, runc. Needs root. Installs what it needs with apt if missing, builds a
# busybox image, starts private daemons whose state all lives in one temporary directory,
# runs the checks, prints a table, then stops the daemons, unmounts what they left and
# removes the directory.
#
#   RUNTIME=/path/to/runtime scripts/oci-e2e.sh [--bench | --bench-only] [--keep]
#
# Checks (each client, each runtime): `echo hello` (stdout), `sh -c 'exit 7'` (exit
# status), `echo data | ... -i cat` (stdin), `-it sh` on a pseudo-terminal of 33x97
# where we type `stty size; echo $((6*7)); exit 3` (tty: 42 printed and status 3;
# tty-size: `33 97`), and exec: `sh -c 'echo in; exit 5'` exec'd into a detached
# `sleep 60` container (stdout and status). Exits non-zero if any check fails for the runtime under test;
# runc's results are printed beside it for comparison and never fail the run.
#
# --bench       after the checks, time (a) `docker run --rm --network none --runtime X IMG
#               /bin/true`, X = runc and the runtime under test in turn, BENCH_N runs each
#               (default 15), and (b) `X run --bundle B ID` of /bin/true from a busybox
#               bundle (run = create+start+wait+delete; a `delete --force` before each run
#               is not timed) for runc, crun (through scripts/crun-hybrid) and the runtime
#               under test, BENCH_BUNDLE_N runs each (default 50): with hyperfine -N if
#               installed, in BENCH_ROUNDS rounds (default 5) that take the runtimes in
#               turn, else (or with BENCH_HYPERFINE=0) a loop that does. Prints a markdown
#               table (also written to BENCH_OUT if set) with median, mean, min, and the
#               ratios to runc.
# --bench-only  the benchmarks without the checks.
# --keep        keep the temporary directory (daemons are still stopped and it is still
#               unmounted), e.g. to read logs/ (stdout and stderr of every check).
#
# Environment:
#   RUNTIME        the runtime under test (absolute path; default target/release/runsc-rs)
#   RUNTIME_NAME   its name in the table and in dockerd's "runtimes" (default runsc-rs)
#   CLIENTS        which clients to use (default "docker ctr podman")
#   CHECK_TIMEOUT  seconds allowed to each client command (default 60)
#   LOG_CALLS=1    run both runtimes through a wrapper that appends each argv (and the
#                  caller's pid/cwd) to LOG_CALLS_FILE (default /tmp/oci-e2e-calls.log)
#   E2E_TMPDIR     where the temporary directory goes (default /tmp)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
helper=$here/oci-e2e-helper.py
PY=/usr/bin/python3

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
checks=1 bench=0 keep=0
for arg; do
    case $arg in
    --bench) bench=1 ;;
    --bench-only) bench=1 checks=0 ;;
    --keep) keep=1 ;;
    -h | --help) usage ;;
    *) echo "oci-e2e: unknown argument $arg" >&2; usage ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "oci-e2e: must run as root (it starts dockerd and containerd)" >&2; exit 2; }
RUNTIME=${RUNTIME:-$repo/target/release/runsc-rs}
RT_NAME=${RUNTIME_NAME:-runsc-rs}
CLIENTS=${CLIENTS:-docker ctr podman}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-60}
BENCH_N=${BENCH_N:-15}
BENCH_BUNDLE_N=${BENCH_BUNDLE_N:-50}
LOG_CALLS=${LOG_CALLS:-0}
LOG_CALLS_FILE=${LOG_CALLS_FILE:-/tmp/oci-e2e-calls.log}
case $RUNTIME in /*) ;; *) echo "oci-e2e: RUNTIME must be an absolute path" >&2; exit 2 ;; esac
[ -x "$RUNTIME" ] || { echo "oci-e2e: RUNTIME=$RUNTIME is not an executable (build it, or set RUNTIME)" >&2; exit 2; }
case $RT_NAME in runc | io.containerd.* | *[!A-Za-z0-9._-]*)
    echo "oci-e2e: RUNTIME_NAME=$RT_NAME is reserved or not a plain name" >&2; exit 2 ;;
esac
for c in $CLIENTS; do
    case $c in docker | ctr | podman) ;; *) echo "oci-e2e: unknown client $c" >&2; exit 2 ;; esac
done
has_client() { case " $CLIENTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if [ $checks = 0 ]; then CLIENTS=docker; fi

t_start=$(date +%s.%N)
t_last=$t_start
phases=()
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
phase_done() { # NAME: records the time since the previous phase
    local t
    t=$(now)
    phases+=("$1 $(elapsed "$t_last" "$t")")
    t_last=$t
}
say() { echo "oci-e2e: $*" >&2; }

# --- Packages ------------------------------------------------------------------------
packages=(busybox-static python3 util-linux runc)
has_client docker && packages+=(docker.io containerd)
has_client ctr && packages+=(containerd)
has_client podman && packages+=(podman conmon)
[ $bench = 1 ] && packages+=(crun hyperfine)
missing=()
for p in $(printf '%s\n' "${packages[@]}" | sort -u); do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq || say "apt-get update failed (some source is unreachable?); installing anyway"
    # docker.io and containerd would start system-wide daemons from their maintainer
    # scripts where an init is running; forbid that for this install only.
    policy_created=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# written by runsc-rs scripts/oci-e2e.sh during apt-get install\nexit 101\n' \
            >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_created=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt_rc=0
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" >/tmp/oci-e2e-apt.log 2>&1 || apt_rc=$?
    if [ $policy_created = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    if [ $apt_rc != 0 ]; then
        tail -n 20 /tmp/oci-e2e-apt.log >&2
        say "apt-get install failed (log: /tmp/oci-e2e-apt.log)"
        exit 1
    fi
    rm -f /tmp/oci-e2e-apt.log
fi
[ -x "$PY" ] || PY=$(command -v python3)
RUNC=$(command -v runc)
phase_done "packages"

# --- Temporary directory and cleanup --------------------------------------------------
T=$(mktemp -d "${E2E_TMPDIR:-/tmp}/oci-e2e.XXXXXX")
chmod 755 "$T"
NS=oci-e2e-$$ # containerd namespace (its runc state goes to /run/containerd/runc/$NS)
IMG=localhost/e2e/busybox:latest
CONTAINERD_PID="" DOCKERD_PID=""
run_containerd_existed=0
[ -e /run/containerd ] && run_containerd_existed=1
# podman 4.3 keeps a blob-info cache in /var/lib/containers/cache whatever its storage
# settings say; remove it afterwards if it is ours.
var_lib_containers_existed=0
[ -e /var/lib/containers ] && var_lib_containers_existed=1

stop_pid() { # PID NAME: SIGTERM, up to 30 s, then SIGKILL
    local pid=$1 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$2 (pid $pid) ignored SIGTERM for 30 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? m left s
    set +e
    trap - EXIT INT TERM
    [ -n "${T:-}" ] && [ -d "$T" ] || exit $rc
    # Containers first, so that their shims and conmons exit on their own.
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        docker ps -aq | xargs -r timeout 60 docker rm -f >/dev/null 2>&1
    fi
    if [ -n "$CONTAINERD_PID" ] && kill -0 "$CONTAINERD_PID" 2>/dev/null; then
        for c in $(ctr task ls -q 2>/dev/null); do
            timeout 20 ctr task kill -s KILL "$c" >/dev/null 2>&1
            timeout 20 ctr task rm -f "$c" >/dev/null 2>&1
        done
        ctr container ls -q 2>/dev/null | xargs -r timeout 60 ctr container rm >/dev/null 2>&1
    fi
    if has_client podman && [ -f "$T/podman/containers.conf" ]; then
        timeout 60 podman rm -af -t 0 >/dev/null 2>&1
    fi
    stop_pid "$DOCKERD_PID" dockerd
    stop_pid "$CONTAINERD_PID" containerd
    # Processes left behind (shims, conmons, runtimes and their children): those whose
    # environment carries our mark (everything started from this script inherits it,
    # through the daemons too) or whose argv names our directory (conmon, which podman
    # starts with a fresh environment).
    "$PY" "$helper" reap "OCI_E2E_MARK=$T" "$T/" $$ 2>&1 | sed 's/^/oci-e2e: /' >&2
    sleep 0.2
    # Mounts the daemons left under $T (overlays, shm), deepest first.
    for i in 1 2 3; do
        left=$(findmnt -rn -o TARGET | awk -v p="$T/" 'index($0, p) == 1' | sort -r)
        [ -z "$left" ] && break
        for m in $left; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    done
    # State the runc shim keeps outside our directory.
    rmdir "/run/containerd/runc/$NS" 2>/dev/null
    # The sockets of shims that were killed (a shim removes its own when it exits): ours are
    # newer than our start, and no process listens on them any more.
    if [ -e "$T/started" ]; then
        for s in /run/containerd/s/*; do
            [ -S "$s" ] && [ "$s" -nt "$T/started" ] && ! grep -qF " $s" /proc/net/unix && rm -f "$s"
        done
    fi
    left=$(findmnt -rn -o TARGET | awk -v p="$T/" 'index($0, p) == 1')
    if [ -n "$left" ]; then
        say "still mounted under $T, not removing it:"
        echo "$left" >&2
    elif [ $keep = 1 ]; then
        say "kept $T"
    else
        rm -rf --one-file-system "$T"
    fi
    if [ $run_containerd_existed = 0 ] && [ -d /run/containerd ]; then
        find /run/containerd -depth -type d -empty -delete 2>/dev/null
    fi
    if [ $var_lib_containers_existed = 0 ] && [ -d /var/lib/containers ]; then
        rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
        rmdir /var/lib/containers/cache /var/lib/containers 2>/dev/null
    fi
    say "total wall time $(elapsed "$t_start" "$(now)") s, cleanup included"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$T/bin" "$T/logs" "$T/fifo"
touch "$T/started"
# Everything started from here on inherits this, daemons included; cleanup() ends what
# carries it.
export OCI_E2E_MARK=$T

# --- Runtimes: optional logging wrappers -----------------------------------------------
RT_PATH=$RUNTIME
RUNC_PATH=$RUNC
DOCKER_RUNC=runc # dockerd's built-in runc unless we log its calls
make_logger() { # LABEL REAL -> prints the wrapper's path
    local w=$T/bin/log-$1
    cat >"$w" <<EOF
#!/bin/bash
{ printf '%s [%s] pid=%s ppid=%s cwd=%s:' "\$(date +%T.%N)" "$1" "\$\$" "\$PPID" "\$PWD"
  printf ' %q' "\$@"; echo; } >>"$LOG_CALLS_FILE"
exec "$2" "\$@"
EOF
    chmod 755 "$w"
    echo "$w"
}
if [ "$LOG_CALLS" = 1 ]; then
    : >"$LOG_CALLS_FILE"
    RT_PATH=$(make_logger "$RT_NAME" "$RUNTIME")
    RUNC_PATH=$(make_logger runc "$RUNC")
    DOCKER_RUNC=runc-logged
    say "logging every runtime call to $LOG_CALLS_FILE"
fi

# --- Root filesystem and images ---------------------------------------------------------
"$repo/tests/scripts/rootfs.sh" busybox "$T/rootfs" >/dev/null
tar -C "$T/rootfs" --numeric-owner --exclude=./.rootfs-stamp -cf "$T/layer.tar" .
"$PY" "$helper" oci-archive "$T/layer.tar" "$T/busybox-oci.tar" "$IMG"
phase_done "rootfs and image archives"

# --- Daemons ---------------------------------------------------------------------------
wait_for() { # NAME PID SECONDS CMD...: until CMD succeeds, while PID lives
    local name=$1 pid=$2 secs=$3 i
    shift 3
    for i in $(seq $((secs * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$T/$name.log" >&2
            say "$name exited during start-up (log above)"
            exit 1
        fi
        sleep 0.1
    done
    tail -n 20 "$T/$name.log" >&2
    say "$name did not answer within $secs s"
    exit 1
}

export CONTAINERD_ADDRESS=$T/containerd/containerd.sock CONTAINERD_NAMESPACE=$NS
if has_client docker || has_client ctr; then
    mkdir -p "$T/containerd"
    cat >"$T/containerd/config.toml" <<EOF
version = 2
root = "$T/containerd/root"
state = "$T/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CONTAINERD_ADDRESS"
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/containerd/opt"
EOF
    containerd --config "$T/containerd/config.toml" >"$T/containerd.log" 2>&1 &
    CONTAINERD_PID=$!
    wait_for containerd "$CONTAINERD_PID" 30 ctr version
    phase_done "containerd start"
fi

if has_client docker; then
    export DOCKER_HOST=unix://$T/docker/docker.sock DOCKER_CONFIG=$T/docker/cli
    mkdir -p "$T/docker/cli"
    echo '{}' >"$T/docker/cli/config.json" # podman reads DOCKER_CONFIG too
    logged_runc=""
    [ "$LOG_CALLS" = 1 ] && logged_runc=", \"runc-logged\": { \"path\": \"$RUNC_PATH\" }"
    cat >"$T/docker/daemon.json" <<EOF
{
  "data-root": "$T/docker/data",
  "exec-root": "$T/docker/exec",
  "pidfile": "$T/docker/dockerd.pid",
  "deprecated-key-path": "$T/docker/key.json",
  "hosts": ["unix://$T/docker/docker.sock"],
  "containerd": "$CONTAINERD_ADDRESS",
  "iptables": false, "ip6tables": false, "ip-masq": false, "ip-forward": false,
  "bridge": "none",
  "storage-driver": "overlay2",
  "runtimes": { "$RT_NAME": { "path": "$RT_PATH" }$logged_runc }
}
EOF
    dockerd --config-file "$T/docker/daemon.json" >"$T/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    wait_for dockerd "$DOCKERD_PID" 60 docker version
    phase_done "dockerd start"
fi

if has_client podman; then
    mkdir -p "$T/podman/tmp" "$T/podman/net"
    # Without CAP_SYS_RESOURCE (this machine's bounding set lacks it) no runtime can raise
    # a hard rlimit, and podman asks for nofile and nproc of 1048576 by default: ask instead
    # for the limits the runtime will have. nofile: our hard limit, which conmon and the
    # runtime inherit. nproc: podman 4.3 runs conmon, and so the runtime, with an NPROC
    # hard limit of 32768 (measured) whatever ours is, so the lower of the two.
    nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
    [ "$nofile" = unlimited ] && nofile=1048576
    { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
    nofile=${E2E_PODMAN_NOFILE:-$nofile} nproc=${E2E_PODMAN_NPROC:-$nproc}
    cat >"$T/podman/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/podman/events.log"
tmp_dir = "$T/podman/tmp"
image_copy_tmp_dir = "$T/podman/tmp"
[network]
network_config_dir = "$T/podman/net"
EOF
    cat >"$T/podman/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$T/podman/storage"
runroot = "$T/podman/run"
EOF
    export CONTAINERS_CONF=$T/podman/containers.conf CONTAINERS_STORAGE_CONF=$T/podman/storage.conf
fi

# --- Image imports -------------------------------------------------------------------
if has_client docker; then
    docker import "$T/layer.tar" "$IMG" >/dev/null
fi
if has_client ctr; then
    ctr images import "$T/busybox-oci.tar" >/dev/null
    ctr images ls -q | grep -qx "$IMG" || { say "ctr import did not create $IMG"; exit 1; }
fi
if has_client podman; then
    podman import "$T/layer.tar" "$IMG" >"$T/podman/import.log" 2>&1 ||
        { cat "$T/podman/import.log" >&2; say "podman import failed"; exit 1; }
fi
phase_done "image imports"

# --- Checks ----------------------------------------------------------------------------
declare -A RESULT
CHECKS=(echo exit stdin tty tty-size exec)
seq=0
name_of() { if [ "$1" = rt ]; then echo "$RT_NAME"; else echo runc; fi; }

build_cmd() { # CLIENT KIND CHECK IO(none|i|it) -- ARGS... : sets cmd=(...)
    local client=$1 kind=$2 check=$3 io=$4 id
    shift 5
    seq=$((seq + 1))
    id=e2e-$$-$seq
    local path=$RT_PATH dname=$RT_NAME
    [ "$kind" = rt ] || { path=$RUNC_PATH dname=$DOCKER_RUNC; }
    case $client in
    docker)
        cmd=(docker run --rm --network none --runtime "$dname" --name "$id")
        [ "$io" = i ] && cmd+=(-i)
        [ "$io" = it ] && cmd+=(-it)
        cmd+=("$IMG" "$@")
        ;;
    ctr) # ctr always forwards its stdin
        cmd=(ctr run --rm --fifo-dir "$T/fifo" --runc-binary "$path")
        [ "$io" = it ] && cmd+=(-t)
        cmd+=("$IMG" "$id" "$@")
        ;;
    podman)
        cmd=(podman run --rm --runtime "$path" --name "$id")
        [ "$io" = i ] && cmd+=(-i)
        [ "$io" = it ] && cmd+=(-it)
        cmd+=("$IMG" "$@")
        ;;
    esac
    printf '%q ' "${cmd[@]}" >"$T/logs/$client-$kind-$check.cmd"
}

short() { # FILE: the client's error line from it (else a line saying error or failed, else
    # its last line), without the clients' boilerplate, escapes and '|', with our directory
    # as $T, at most 100 characters
    local lines line
    lines=$(tr -d '\r\0' <"$1" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/|/\//g' | grep -av '^[[:space:]]*$' || true)
    line=$(grep -aE -m1 '^(docker: |ctr: )?Error|^ctr: ' <<<"$lines" || true)
    [ -n "$line" ] || line=$(grep -aiE -m1 'error|failed' <<<"$lines" || true)
    [ -n "$line" ] || line=$(tail -n 1 <<<"$lines")
    line=${line//$T/\$T}
    sed -E 's/^(docker: |ctr: )//; s/^Error( response from daemon)?: //; s/^time="[^"]*" level=[a-z]+ msg="//;
        s/failed to create shim task: //' <<<"$line" | cut -c1-100
}

run_cmd() { # BASE: runs "${cmd[@]}" (stdin as given) with stdout and stderr in BASE.out and
    # BASE.err, under CHECK_TIMEOUT; sets rc and timed_out. The subshell (not replaced by
    # timeout, thanks to the exit) keeps bash's "Killed" job reports out of our output.
    local t0=$SECONDS
    rc=0
    (
        timeout -k 5 "$CHECK_TIMEOUT" "${cmd[@]}" >"$1.out" 2>"$1.err"
        exit $?
    ) 2>/dev/null || rc=$?
    timed_out=0
    [ $((SECONDS - t0)) -lt "$CHECK_TIMEOUT" ] || timed_out=1
}

judge() { # CLIENT CHECK KIND WANT_RC WANT_OUT LOGBASE (after run_cmd)
    local client=$1 check=$2 kind=$3 want_rc=$4 want_out=$5 base=$6 out reason
    out=$(tr -d '\0' <"$base.out")
    if [ "$rc" = "$want_rc" ] && { [ -z "$want_out" ] || [ "$out" = "$want_out" ]; }; then
        RESULT[$client.$check.$kind]=PASS
        return
    fi
    if [ $timed_out = 1 ]; then
        reason="timed out after ${CHECK_TIMEOUT}s"
    elif [ "$rc" != "$want_rc" ]; then
        reason="exit $rc, want $want_rc"
    else
        reason="stdout $(printf %q "${out:0:30}"), want $want_out"
    fi
    [ -s "$base.err" ] && reason="$reason: $(short "$base.err")"
    RESULT[$client.$check.$kind]="FAIL $reason"
}

run_checks() { # CLIENT KIND
    local client=$1 kind=$2 base=$T/logs/$1-$2 txt reason size pid fd
    build_cmd "$client" "$kind" echo none -- echo hello
    run_cmd "$base-echo" </dev/null
    judge "$client" echo "$kind" 0 hello "$base-echo"

    build_cmd "$client" "$kind" exit none -- sh -c 'exit 7'
    run_cmd "$base-exit" </dev/null
    judge "$client" exit "$kind" 7 "" "$base-exit"

    build_cmd "$client" "$kind" stdin i -- cat
    if [ "$client" = ctr ]; then
        # ctr 1.6 passes on the end of its stdin only if it reads it after the task is
        # created (its stdinCloser has no closer before that: the EOF is dropped and cat
        # waits forever), so hold stdin open until cat has echoed the line, or ctr is gone.
        rm -f "$base-stdin.fifo"
        mkfifo "$base-stdin.fifo"
        (
            run_cmd "$base-stdin" <"$base-stdin.fifo"
            echo "$rc $timed_out" >"$base-stdin.rc"
        ) &
        pid=$!
        exec {fd}>"$base-stdin.fifo"
        printf 'data\n' >&$fd
        while kill -0 $pid 2>/dev/null && ! grep -qa data "$base-stdin.out" 2>/dev/null; do sleep 0.05; done
        exec {fd}>&-
        wait $pid || true
        read -r rc timed_out <"$base-stdin.rc"
    else
        run_cmd "$base-stdin" < <(printf 'data\n')
    fi
    judge "$client" stdin "$kind" 0 data "$base-stdin"

    build_cmd "$client" "$kind" tty it -- sh
    rc=0
    "$PY" "$helper" pty --rows 33 --cols 97 --timeout "$CHECK_TIMEOUT" --prompt-wait 15 \
        --send $'stty size; echo $((6*7)); exit 3\r' --transcript "$base-tty.out" -- "${cmd[@]}" \
        2>"$base-tty.err" || rc=$?
    txt=$(tr -d '\r\0' <"$base-tty.out" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g')
    if grep -aqx 42 <<<"$txt" && [ $rc = 3 ]; then
        RESULT[$client.tty.$kind]=PASS
    else
        if [ $rc = 124 ]; then
            reason="timed out after ${CHECK_TIMEOUT}s"
        elif ! grep -aqx 42 <<<"$txt"; then
            reason="no 42 (exit $rc)"
        else
            reason="exit $rc, want 3"
        fi
        [ -s "$base-tty.err" ] && [ $rc != 124 ] && reason="$reason; $(short "$base-tty.err")"
        [ -s "$base-tty.out" ] && reason="$reason: $(short "$base-tty.out")"
        RESULT[$client.tty.$kind]="FAIL $reason"
    fi
    if grep -aqx '33 97' <<<"$txt"; then
        RESULT[$client.tty-size.$kind]=PASS
    else
        size=$(grep -ax '[0-9]* [0-9]*' <<<"$txt" | head -n1 || true)
        RESULT[$client.tty-size.$kind]="FAIL stty size: ${size:-nothing}, want 33 97"
    fi

    # exec: into a detached container, as `docker exec` (the runtime's exec --detach
    # --pid-file --process), then the container is removed.
    build_cmd "$client" "$kind" exec none -- sleep 60
    local detached=("${cmd[@]}") cid exec_cmd=() stop_cmd=()
    case $client in
    docker | podman)
        cid=$(awk '{for (i = 1; i < NF; i++) if ($i == "--name") print $(i + 1)}' <<<"${cmd[*]}")
        detached=("${cmd[0]}" run -d "${cmd[@]:2}")
        exec_cmd=("$client" exec "$cid" sh -c 'echo in; exit 5')
        stop_cmd=("$client" rm -f "$cid")
        # podman first waits 10 s for a SIGTERM that a container's init ignores.
        [ "$client" = podman ] && stop_cmd=(podman rm -f -t 0 "$cid")
        ;;
    ctr)
        cid=${cmd[-3]}
        detached=(ctr run -d "${cmd[@]:3}")
        exec_cmd=(ctr task exec --fifo-dir "$T/fifo" --exec-id x1 "$cid" sh -c 'echo in; exit 5')
        stop_cmd=(sh -c "ctr task kill -s KILL $cid; sleep 0.5; ctr task rm -f $cid; ctr c rm $cid")
        ;;
    esac
    cmd=("${detached[@]}")
    run_cmd "$base-exec-start" </dev/null
    if [ "$rc" != 0 ]; then
        RESULT[$client.exec.$kind]="FAIL starting the container: exit $rc: $(short "$base-exec-start.err")"
    else
        cmd=("${exec_cmd[@]}")
        run_cmd "$base-exec" </dev/null
        judge "$client" exec "$kind" 5 in "$base-exec"
    fi
    cmd=("${stop_cmd[@]}")
    run_cmd "$base-exec-stop" </dev/null
}

failed=0
if [ $checks = 1 ]; then
    for client in $CLIENTS; do
        for kind in rt runc; do
            say "checks: $client with $(name_of $kind)"
            run_checks "$client" "$kind"
        done
        phase_done "checks: $client"
    done

    # The table: check x client, the runtime under test beside runc.
    rows=()
    w1=6 w2=8 w3=${#RT_NAME} w4=4
    for client in $CLIENTS; do
        for check in "${CHECKS[@]}"; do
            a=${RESULT[$client.$check.rt]} b=${RESULT[$client.$check.runc]}
            [ "${a%% *}" = PASS ] || failed=1
            rows+=("$client|$check|$a|$b")
            [ ${#a} -gt $w3 ] && w3=${#a}
            [ ${#b} -gt $w4 ] && w4=${#b}
        done
    done
    echo
    echo "OCI clients x $RT_NAME ($RUNTIME), runc beside it ($($RUNC --version | head -n1)):"
    echo
    printf "| %-${w1}s | %-${w2}s | %-${w3}s | %-${w4}s |\n" client check "$RT_NAME" runc
    printf "|%s|%s|%s|%s|\n" "$(printf -- '-%.0s' $(seq $((w1 + 2))))" \
        "$(printf -- '-%.0s' $(seq $((w2 + 2))))" "$(printf -- '-%.0s' $(seq $((w3 + 2))))" \
        "$(printf -- '-%.0s' $(seq $((w4 + 2))))"
    for r in "${rows[@]}"; do
        IFS='|' read -r c k a b <<<"$r"
        printf "| %-${w1}s | %-${w2}s | %-${w3}s | %-${w4}s |\n" "$c" "$k" "$a" "$b"
    done
    echo
    if [ $failed = 1 ]; then
        echo "Failures of $RT_NAME, in full (stderr, or the terminal transcript):"
        for client in $CLIENTS; do
            for check in echo exit stdin tty; do
                [ "${RESULT[$client.$check.rt]%% *}" = PASS ] && continue
                f=$T/logs/$client-rt-$check
                echo "--- $client $check: $(cat "$f.cmd" 2>/dev/null)"
                { cat "$f.err"; if [ $check = tty ]; then cat "$f.out"; fi; } 2>/dev/null |
                    tr -d '\r\0' | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/^/    /' | head -n 20 || true
            done
        done
        echo
    fi
fi

# --- Benchmarks ---------------------------------------------------------------------------
bench_rows=()
bench_row() { # WHAT NAME FILE_OF_MS BASE_FILE_OF_MS
    local s b n med mean min mr nr
    s=$("$PY" "$helper" stats <"$3")
    b=$("$PY" "$helper" stats <"$4")
    read -r n med mean min _ <<<"$s"
    read -r _ bmed _ bmin _ <<<"$b"
    mr=$(awk -v a="$med" -v b="$bmed" 'BEGIN { printf "%.2fx", a / b }')
    nr=$(awk -v a="$min" -v b="$bmin" 'BEGIN { printf "%.2fx", a / b }')
    bench_rows+=("| $1 | $2 | $n | $med | $mean | $min | $mr | $nr |")
}
bench_fail() { # WHAT NAME REASON FATAL
    bench_rows+=("| $1 | $2 | 0 | FAIL: $3 | | | | |")
    [ "$4" = 0 ] || failed=1
}

if [ $bench = 1 ]; then
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", (b - a) * 1000 }'; } # from $EPOCHREALTIME
    [ "$LOG_CALLS" = 1 ] && say "LOG_CALLS=1: the timings include the logging wrapper"
    # (a) docker run, the two runtimes in turn, alternating which goes first.
    mkdir -p "$T/bench"
    what='`docker run --rm --network none --runtime X busybox /bin/true`'
    if has_client docker; then
        declare -A docker_ok
        for d in "$DOCKER_RUNC" "$RT_NAME"; do
            : >"$T/bench/docker-$d.ms"
            docker_ok[$d]=1
            docker run --rm --network none --runtime "$d" "$IMG" /bin/true >/dev/null 2>"$T/bench/docker-$d.err" ||
                docker_ok[$d]=0
        done
        say "bench: docker run, $BENCH_N runs each"
        for i in $(seq "$BENCH_N"); do
            order=("$DOCKER_RUNC" "$RT_NAME")
            [ $((i % 2)) = 0 ] && order=("$RT_NAME" "$DOCKER_RUNC")
            for d in "${order[@]}"; do
                [ "${docker_ok[$d]}" = 1 ] || continue
                t0=$EPOCHREALTIME
                docker run --rm --network none --runtime "$d" "$IMG" /bin/true >/dev/null 2>"$T/bench/docker-$d.err" ||
                    docker_ok[$d]=0
                ms "$t0" "$EPOCHREALTIME" >>"$T/bench/docker-$d.ms"
            done
        done
        for d in "$DOCKER_RUNC" "$RT_NAME"; do
            label=$d
            [ "$d" = "$DOCKER_RUNC" ] && label=runc
            if [ "${docker_ok[$d]}" = 1 ] && [ "${docker_ok[$DOCKER_RUNC]}" = 1 ]; then
                bench_row "$what" "$label" "$T/bench/docker-$d.ms" "$T/bench/docker-$DOCKER_RUNC.ms"
            else
                bench_fail "$what" "$label" "$(short "$T/bench/docker-$d.err")" "$([ "$d" = "$RT_NAME" ] && echo 1 || echo 0)"
            fi
        done
    else
        say "bench: no docker run timings (docker is not in CLIENTS)"
    fi

    # (b) RUNTIME run --bundle: create+start+wait+delete of /bin/true.
    B=$T/bench/bundle
    mkdir -p "$B"
    "$RUNC" spec --bundle "$B"
    "$PY" "$helper" bundle-config "$B/config.json" "$T/rootfs" /bin/true
    what='`X run --bundle B ID` (busybox, /bin/true)'
    names=(runc crun rt)
    declare -A bins=([runc]=$RUNC [crun]=$here/crun-hybrid [rt]=$RUNTIME)
    declare -A labels=([runc]=runc [crun]="crun (scripts/crun-hybrid)" [rt]=$RT_NAME)
    use_hf=0
    command -v hyperfine >/dev/null && [ "${BENCH_HYPERFINE:-1}" = 1 ] && use_hf=1
    declare -A bench_ok
    for x in "${names[@]}"; do
        st=$T/bench/state-$x
        mkdir -p "$st"
        bench_ok[$x]=1
        rc=0
        "${bins[$x]}" --root "$st" run --bundle "$B" "e2e-$$-$x" </dev/null >"$T/bench/run-$x.err" 2>&1 || rc=$?
        if [ $rc != 0 ]; then
            bench_ok[$x]=0
            echo "exit $rc" >>"$T/bench/run-$x.err"
        fi
        "${bins[$x]}" --root "$st" delete --force "e2e-$$-$x" >/dev/null 2>&1 || true
    done
    # The machine is shared and its load drifts, so the runtimes take turns: hyperfine in
    # BENCH_ROUNDS rounds (default 5), each running every runtime in a rotating order, or a
    # loop running each runtime once per iteration, again in a rotating order (in a fixed
    # order the runtime after runc came out 20-25% faster than the one before it, even with
    # runc in both places: what one run leaves the kernel to tear down lands on the next).
    rounds=${BENCH_ROUNDS:-5}
    per=$(((BENCH_BUNDLE_N + rounds - 1) / rounds))
    for x in "${names[@]}"; do : >"$T/bench/run-$x.ms"; done
    if [ $use_hf = 1 ]; then
        how="hyperfine -N, $rounds rounds of $per runs each (1 warm-up run) with the runtimes in turn"
        say "bench: run --bundle, $how"
        for r in $(seq "$rounds"); do
            order=("${names[@]:$((r % 3))}" "${names[@]:0:$((r % 3))}")
            for x in "${order[@]}"; do
                [ "${bench_ok[$x]}" = 1 ] || continue
                st=$T/bench/state-$x
                if hyperfine -N --style none --warmup 1 --runs "$per" \
                    --prepare "sh -c '${bins[$x]} --root $st delete --force e2e-$$-$x >/dev/null 2>&1 || true'" \
                    --export-json "$T/bench/run-$x.json" \
                    "${bins[$x]} --root $st run --bundle $B e2e-$$-$x" >"$T/bench/run-$x.hf" 2>&1; then
                    "$PY" "$helper" hyperfine-times "$T/bench/run-$x.json" >>"$T/bench/run-$x.ms"
                else
                    bench_ok[$x]=0
                    cp "$T/bench/run-$x.hf" "$T/bench/run-$x.err"
                fi
            done
        done
    else
        how="a loop running each runtime in turn (in a rotating order), $BENCH_BUNDLE_N times"
        say "bench: run --bundle, $how"
        for i in $(seq "$BENCH_BUNDLE_N"); do
            order=("${names[@]:$((i % 3))}" "${names[@]:0:$((i % 3))}")
            for x in "${order[@]}"; do
                [ "${bench_ok[$x]}" = 1 ] || continue
                st=$T/bench/state-$x
                "${bins[$x]}" --root "$st" delete --force "e2e-$$-$x" >/dev/null 2>&1 || true
                t0=$EPOCHREALTIME
                "${bins[$x]}" --root "$st" run --bundle "$B" "e2e-$$-$x" </dev/null >/dev/null 2>"$T/bench/run-$x.err" ||
                    bench_ok[$x]=0
                ms "$t0" "$EPOCHREALTIME" >>"$T/bench/run-$x.ms"
            done
        done
    fi
    for x in "${names[@]}"; do
        "${bins[$x]}" --root "$T/bench/state-$x" delete --force "e2e-$$-$x" >/dev/null 2>&1 || true
        label=${labels[$x]}
        if [ "${bench_ok[$x]}" = 1 ] && [ "${bench_ok[runc]}" = 1 ]; then
            bench_row "$what" "$label" "$T/bench/run-$x.ms" "$T/bench/run-runc.ms"
        else
            # Only the runtime under test failing fails the run.
            bench_fail "$what" "$label" "$(short "$T/bench/run-$x.err")" "$([ "$x" = rt ] && echo 1 || echo 0)"
        fi
    done
    {
        echo
        echo "### OCI runtime start-up, $(date -u +%F) ($RT_NAME = $RUNTIME)"
        echo
        echo "Times in ms; ratios are against runc in the same group of rows."
        if has_client docker; then echo "docker: $BENCH_N runs each, the two runtimes in turn."; fi
        echo "run --bundle: $how;"
        echo "\`run\` is create, start, wait and delete; a \`delete --force\` before each run is not timed."
        echo "Load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)."
        echo
        echo "| command | runtime | runs | median | mean | min | median vs runc | min vs runc |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|"
        printf '%s\n' "${bench_rows[@]}"
        echo
    } | tee "${BENCH_OUT:-/dev/null}"
    phase_done "benchmarks"
fi

phase_done "report"
{
    printf 'oci-e2e: wall time %s s (' "$(elapsed "$t_start" "$(now)")"
    sep=""
    for p in "${phases[@]}"; do
        printf '%s%s %s s' "$sep" "${p% *}" "${p##* }"
        sep=", "
    done
    echo "; then cleanup)"
} >&2
if [ $failed = 1 ]; then
    say "FAILED for $RT_NAME"
    exit 1
fi
say "no failures for $RT_NAME"
