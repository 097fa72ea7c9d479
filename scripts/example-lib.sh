# Shared by the scripts/run-*-example scripts (source it, don't run it). Each script runs
# one example on a copy in a temporary directory, against servers it starts, and leaves
# nothing behind: on exit, success or not, the servers are stopped and the copy removed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '== %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

work="" ws=""
names=() pids=() logs=() # servers started with `serve`
stops=()                  # `on_exit` commands: name, command, name, command, ...

# Makes the temporary directory $work and arranges the cleanup.
make_work_dir() {
  work=$(mktemp -d)
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# on_exit NAME COMMAND: a server stopped by COMMAND (evaluated on exit), e.g. a pg_ctl stop.
on_exit() { stops+=("$1" "$2"); }

cleanup() {
  local rc=$? i list stopped=()
  set +e
  if [ "$rc" -ne 0 ]; then
    for i in "${!logs[@]}"; do
      printf -- '-- last lines of the %s log:\n' "${names[$i]}" >&2
      tail -n 15 "${logs[$i]}" >&2
    done
  fi
  for ((i = 0; i < ${#stops[@]}; i += 2)); do
    eval "${stops[i + 1]}" && stopped+=("${stops[i]}")
  done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do # the last started first
    # TERM, then KILL after 2 s (Azurite can take 10 s to close; its data goes anyway).
    kill "${pids[$i]}" 2>/dev/null
    for _ in $(seq 20); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${pids[$i]}" 2>/dev/null
    wait "${pids[$i]}" 2>/dev/null
    stopped+=("${names[$i]}")
  done
  rm -rf "$work"
  [ ${#stopped[@]} -gt 0 ] || stopped=(nothing)
  list=$(printf '%s, ' "${stopped[@]}")
  say "stopped ${list%, }; removed $work"
  exit "$rc"
}

# True when something accepts connections on HOST:PORT.
port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# serve NAME ADDRESS LOG COMMAND...: starts a server in the background, its output in LOG.
# With an ADDRESS (HOST:PORT) the port must be free before and listening after.
serve() {
  local name=$1 addr=$2 log=$3
  shift 3
  if [ -n "$addr" ] && port_open "$addr"; then
    die "$addr is already in use; stop what listens there or choose another port"
  fi
  say "starting $name${addr:+ on $addr}"
  : >"$log"
  "$@" >"$log" 2>&1 &
  names+=("$name") pids+=($!) logs+=("$log")
  [ -z "$addr" ] || wait_port "$addr"
}

# Waits up to 60 s until HOST:PORT accepts connections from the server started last.
wait_port() {
  for _ in $(seq 600); do
    port_open "$1" && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || die "${names[-1]} exited without listening on $1"
    sleep 0.1
  done
  die "${names[-1]} is not listening on $1 after 60 s"
}

# copy_example NAME: copies examples/NAME to $ws, without its state and master key.
copy_example() {
  ws="$work/ws"
  cp -r "examples/$1" "$ws"
  rm -rf "$ws/state" "$ws/.landlord"
  say "working on a copy of examples/$1 in $ws"
}

# $LANDLORD_BIN runs a landlord built elsewhere (e.g. a debug build); else a release build.
landlord_bin() {
  if [ -z "${LANDLORD_BIN:-}" ]; then
    say "building landlord (cargo build --release)"
    cargo build --release --quiet
    LANDLORD_BIN="${CARGO_TARGET_DIR:-target}/release/landlord"
  fi
  [ -x "$LANDLORD_BIN" ] || die "no landlord binary at $LANDLORD_BIN"
  say "using $LANDLORD_BIN"
}

landlord() { "$LANDLORD_BIN" -C "$ws" "$@"; }
