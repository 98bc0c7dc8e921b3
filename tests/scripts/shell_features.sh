#!/bin/bash
# Bash features that need processes, pipes and signals, each printing something that
# shows it worked: subshells, pipelines, traps on EXIT and on USR1 (sent by the shell to
# itself and by a child), background jobs and wait, command substitution, a while-read
# loop fed by a pipe. Every line is the same on every run (no pids, no timing races), so
# the output can be compared with a native run. Exits 5, from the EXIT trap's view.
set -u

trap 'echo "EXIT trap: status $?"' EXIT
usr1=0
trap 'usr1=$((usr1 + 1)); echo "USR1 trap ran ($usr1)"' USR1

kill -USR1 $$
echo "after kill -USR1 \$\$: usr1=$usr1"

# A subshell is another process with its own exit status; its variables stay there.
v=outer
( v=inner; [ "$BASHPID" != "$$" ] && echo "subshell in another process: yes"; exit 3 )
echo "subshell status $?, v=$v"

# Command substitution, nested, through a pipeline.
x=$(echo "c b a" | tr ' ' '\n' | sort | head -n 2 | paste -sd, -)
echo "substitution: $x, nested: $(echo "$(echo deep)")"

# PIPESTATUS of a pipeline, and pipefail.
false | true | (exit 4)
echo "PIPESTATUS ${PIPESTATUS[*]}"
set -o pipefail
if ! true | false | true; then echo "pipefail: failed as it should"; fi
set +o pipefail

# A while-read loop fed by a pipe runs in a subshell: its sum reaches the shell only
# through its output.
total=$(seq 1 100 | while read -r n; do s=$(( ${s:-0} + n )); echo "$s"; done | tail -n 1)
echo "sum of 1..100 through a while-read loop: $total"
printf 'alpha 1\nbeta 2\ngamma 3\n' | while read -r name num; do
    echo "read: $num=$name"
done

# Background jobs: exit statuses collected by wait, in the order asked.
( sleep 0.2; echo "job 1 done"; exit 0 ) &
j1=$!
( exit 7 ) &
j2=$!
wait "$j1"; echo "job 1 status $?"
wait "$j2"; echo "job 2 status $?"
# A job killed by a signal: 128 + SIGTERM. It kills itself once it is sh (a kill from
# here could land before the fork's child has exec'd, while it still runs this script's
# traps).
sh -c 'kill -TERM $$; sleep 5' &
j3=$!
wait "$j3"; echo "killed job status $?"
# Several jobs, one wait for all.
for i in 1 2 3; do ( sleep 0.$i; exit $i ) & done
wait
echo "all jobs waited for: $(jobs -p | wc -l) left"

# USR1 from a child process: the trap runs once the foreground child is done.
( kill -USR1 $$ )
echo "after a child's kill -USR1: usr1=$usr1"
sh -c 'kill -USR1 $PPID'
echo "after sh's kill -USR1 of its parent: usr1=$usr1"

# A function in a pipeline, and a here-string.
upper() { tr a-z A-Z; }
echo "pipeline function: $(echo shout | upper)"
read -r first rest <<< "one two three"
echo "here-string: $first / $rest"

exit 5
