#!/usr/bin/env bash
# packaging/check-systemd.sh: the .deb under a real systemd. Boots Debian 12 (systemd 252) in
# a systemd-nspawn container, installs target/debian/asycamore_*.deb with apt-get and checks,
# with the container's own systemctl, journalctl and curl:
#
#   install enables and starts asycamore.service; the data port (IPv4 and IPv6) and the admin
#   port answer; `systemctl reload` with a changed body exits 0 and serves the new body; a
#   reload with a broken file exits non-zero and the old body keeps serving; the daemon's
#   error is in `journalctl -p err -u asycamore` (the sd-daemon <N> prefixes) and its info
#   lines are not; `systemctl restart` starts a new process; `systemctl stop` lets a slow
#   upload that is still arriving finish (graceful drain) and exits 0; asycamore.socket starts
#   the service on the first connection; `apt-get remove` then `apt-get install` leaves the
#   service enabled and running, and one the administrator disabled stays disabled; `apt-get
#   purge` removes the package, its configuration and every unit link and mask.
#
# Run as root from the repository root on a Debian-like machine (no systemd needed on the
# host; the container has its own):
#   bash packaging/check-systemd.sh
# It builds the .deb first (`make deb`; after `make packages`, as in CI, only cargo-deb's
# packing runs again). Installs, when missing: cargo-deb (cargo install --locked), debootstrap
# and systemd-container (apt-get).
#
# The container's root is made once by `debootstrap --variant=minbase` from the machine's
# Debian mirror (its APT sources, or $ASYCAMORE_CI_MIRROR) and cached under
# /var/cache/asycamore-ci/ (or $ASYCAMORE_CI_CACHE), keyed by a hash of the suite, variant,
# package list and architecture; a machine without the cache builds it (about 2-3 minutes).
# Each run boots a throw-away overlay over the cached root (a copy where overlayfs is not
# available), so the cache stays as debootstrap left it. The container has a private network
# (loopback only), so nothing is downloaded inside it.
#
# Every step is printed as "==> STEP" with the time the previous one took; a failure prints
# "FAILED: STEP", the unit's status and the last journal lines of asycamore, and exits
# non-zero. Every wait polls a condition with a deadline. The container, the overlay mount and
# the work directory are removed on every exit.
set -euo pipefail

export LC_ALL=C
export PATH="$HOME/.cargo/bin:$PATH"

PKG=asycamore
SUITE=bookworm
VARIANT=minbase
INCLUDE=systemd,systemd-sysv,dbus,curl,ca-certificates,adduser
# Bump when the preparation of the cached root below changes, so old caches are not used.
PREPARE_VERSION=1
CACHE_DIR=${ASYCAMORE_CI_CACHE:-/var/cache/asycamore-ci}
CONF=/etc/asycamore/asycamore.toml
ADMIN=http://127.0.0.1:9180
# The body the drain check uploads, and how fast: 8 KiB at 2 KiB/s takes about 4 s, ample
# time to stop the service while it is still arriving, and above the packaged
# min_body_bytes_per_second (500).
DRAIN_BYTES=8192
DRAIN_RATE=2K

START_NS=$(date +%s%N)
STEP="(start)"
STEP_NS=$START_NS
WORK=""
MERGED=""
NSPAWN_PID=""
LEADER=""
DRAIN_PID=""

seconds_since() {
    local ns=$(($(date +%s%N) - $1))
    printf '%d.%01ds' $((ns / 1000000000)) $((ns % 1000000000 / 100000000))
}

step() {
    if [ "$STEP" != "(start)" ]; then
        echo "    ($(seconds_since "$STEP_NS"))"
    fi
    STEP="$*"
    STEP_NS=$(date +%s%N)
    echo
    echo "==> $STEP"
}

fail() {
    echo "FAILED: $STEP: $*" >&2
    exit 1
}

# in_ct COMMAND...: runs COMMAND inside the container (every namespace of its PID 1, so its
# file system, network, systemd and journal), with a clean environment.
in_ct() {
    nsenter --target "$LEADER" --all -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@"
}

# wait_for SECONDS WHAT COMMAND...: polls COMMAND (output discarded) every 0.1 s until it
# succeeds; fails the step when SECONDS pass first.
wait_for() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$(($(date +%s%N) + timeout * 1000000000))
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s%N)" -ge "$deadline" ]; then
            fail "timed out after ${timeout}s waiting for $what"
        fi
        sleep 0.1
    done
}

# expect WHAT EXPECTED ACTUAL: fails the step unless ACTUAL is EXPECTED.
expect() {
    if [ "$3" != "$2" ]; then
        fail "$1: expected '$2', got '$3'"
    fi
    echo "$1: $3"
}

unit_state() { in_ct systemctl is-active "$@" 2>/dev/null || true; }
unit_enabled() { in_ct systemctl is-enabled "$@" 2>/dev/null || true; }
main_pid() { in_ct systemctl show -P MainPID asycamore.service; }
# get PATH: the body of http://127.0.0.1PATH from inside the container (curl fails on >= 400).
get() { in_ct curl -fsS --max-time 5 "http://127.0.0.1$1"; }
is_active() { [ "$(unit_state "$1")" = active ]; }
container_running() {
    [ "$(in_ct systemctl is-system-running 2>/dev/null || true)" = running ]
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [ "$rc" -ne 0 ]; then
        echo >&2
        echo "FAILED: $STEP (exit $rc)" >&2
        if [ -n "$LEADER" ] && [ -d "/proc/$LEADER" ]; then
            echo "--- systemctl status asycamore.service asycamore.socket ---" >&2
            in_ct systemctl status --no-pager --lines=0 asycamore.service asycamore.socket >&2
            echo "--- journalctl -u asycamore -u asycamore.socket (last 40 lines) ---" >&2
            in_ct journalctl --no-pager -n 40 -u asycamore.service -u asycamore.socket >&2
            echo "--- systemctl --failed ---" >&2
            in_ct systemctl --failed --no-pager >&2
        fi
        if [ -n "$WORK" ] && [ -s "$WORK/nspawn.log" ]; then
            echo "--- systemd-nspawn output (last 20 lines) ---" >&2
            tail -n 20 "$WORK/nspawn.log" >&2
        fi
        echo "--- cleaning up ---" >&2
    fi
    if [ -n "$DRAIN_PID" ] && kill -0 "$DRAIN_PID" 2>/dev/null; then
        kill "$DRAIN_PID" 2>/dev/null
        wait "$DRAIN_PID" 2>/dev/null
    fi
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        # SIGTERM: systemd-nspawn asks the container's systemd to power off.
        kill -TERM "$NSPAWN_PID" 2>/dev/null
        local _
        for _ in $(seq 1 150); do
            kill -0 "$NSPAWN_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$NSPAWN_PID" 2>/dev/null; then
            echo "the container did not power off within 15s: killing it" >&2
            [ -n "$LEADER" ] && kill -KILL "$LEADER" 2>/dev/null
            kill -KILL "$NSPAWN_PID" 2>/dev/null
        fi
        wait "$NSPAWN_PID" 2>/dev/null
    fi
    if [ -n "$MERGED" ] && mountpoint -q "$MERGED"; then
        umount "$MERGED" || umount -l "$MERGED"
    fi
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
    echo "total: $(seconds_since "$START_NS")"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# debian_mirror: the first URI of a "deb" source for $SUITE with the main component in the
# machine's APT sources, one-line (sources.list, *.list) or deb822 (*.sources).
debian_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk -v suite="$SUITE" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) != suite) next
                for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk -v suite="$SUITE" '
            function flush() {
                if ((" " types " ") ~ / deb / && (" " suites " ") ~ (" " suite " ") &&
                    (" " comps " ") ~ / main / && enabled != "no") {
                    split(uris, u, " "); print u[1]; done = 1
                }
                types = suites = comps = uris = ""; enabled = "yes"
            }
            BEGIN { enabled = "yes" }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); if (done) exit; next }
            {
                key = tolower($1); $1 = ""; sub(/^[ \t]+/, "")
                if (key == "types:") types = $0
                else if (key == "uris:") uris = $0
                else if (key == "suites:") suites = $0
                else if (key == "components:") comps = $0
                else if (key == "enabled:") enabled = tolower($0)
            }
            END { if (!done) flush() }' "$f"
    done
}

# find_leader: the host pid of the container's PID 1 (the child of systemd-nspawn whose pid is
# 1 in its own namespace), if it exists yet.
find_leader() {
    local status pid
    for status in /proc/[0-9]*/status; do
        if awk -v parent="$NSPAWN_PID" '
            $1 == "PPid:" { ppid = $2 }
            $1 == "NSpid:" { inner = $NF; levels = NF - 1 }
            END { exit !(ppid == parent && levels > 1 && inner == 1) }' "$status" 2>/dev/null; then
            pid=${status#/proc/}
            echo "${pid%/status}"
            return 0
        fi
    done
    return 1
}

################################################################################################
step "preconditions and tools"
[ "$(id -u)" -eq 0 ] || fail "run as root"
if [ ! -f Cargo.toml ] || [ ! -f packaging/check-systemd.sh ]; then
    fail "run from the repository root"
fi
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v nsenter >/dev/null || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "apt-get install -y ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v cargo-deb >/dev/null; then
    echo "cargo install --locked cargo-deb"
    cargo install --locked cargo-deb
fi
echo "$(systemd-nspawn --version | head -1); debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"
WORK=$(mktemp -d /tmp/asycamore-systemd.XXXXXX)

################################################################################################
step "make deb"
rm -f target/debian/"$PKG"_*.deb
make deb
debs=(target/debian/"$PKG"_*.deb)
if [ "${#debs[@]}" -ne 1 ] || [ ! -f "${debs[0]}" ]; then
    fail "expected one .deb in target/debian"
fi
DEB=${debs[0]}
echo "built $DEB"

################################################################################################
step "the cached Debian root ($SUITE, $VARIANT, with $INCLUDE)"
ARCH=$(dpkg --print-architecture)
KEY=$(printf '%s\n' "$SUITE" "$VARIANT" "$INCLUDE" "$ARCH" "$PREPARE_VERSION" | sha256sum | cut -c1-16)
ROOTFS="$CACHE_DIR/rootfs-$KEY"
mkdir -p "$CACHE_DIR"
# One builder at a time; others wait for it (up to 20 minutes) and use its result.
exec 9>"$CACHE_DIR/lock"
flock -w 1200 9 || fail "another run has held $CACHE_DIR/lock for 20 minutes"
if [ -f "$ROOTFS/.asycamore-ci-complete" ]; then
    echo "cached: $ROOTFS (built $(cat "$ROOTFS/.asycamore-ci-complete"))"
else
    MIRROR=${ASYCAMORE_CI_MIRROR:-$(debian_mirror | head -n 1)}
    [ -n "$MIRROR" ] || fail "no 'deb' source for $SUITE main in /etc/apt/sources.list{,.d/}; set ASYCAMORE_CI_MIRROR"
    echo "not cached: debootstrap from $MIRROR into $ROOTFS"
    rm -rf "$ROOTFS.new"
    if ! debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$ROOTFS.new" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1; then
        tail -n 30 "$WORK/debootstrap.log" >&2
        [ -f "$ROOTFS.new/debootstrap/debootstrap.log" ] && tail -n 30 "$ROOTFS.new/debootstrap/debootstrap.log" >&2
        rm -rf "$ROOTFS.new"
        fail "debootstrap failed"
    fi
    # The downloaded packages are not needed in the image.
    rm -f "$ROOTFS.new"/var/cache/apt/archives/*.deb
    echo asycamore-ci >"$ROOTFS.new/etc/hostname"
    date -u +%Y-%m-%dT%H:%M:%SZ >"$ROOTFS.new/.asycamore-ci-complete"
    mv "$ROOTFS.new" "$ROOTFS"
    # Roots made for another key (an older package list) are of no further use.
    for old in "$CACHE_DIR"/rootfs-*; do
        if [ "$old" != "$ROOTFS" ] && [ -d "$old" ]; then
            echo "removing the outdated cache $old"
            rm -rf "$old"
        fi
    done
    echo "cached: $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))"
fi
flock -u 9

################################################################################################
step "boot the container (systemd-nspawn -b on an overlay of the cached root)"
MERGED="$WORK/root"
mkdir -p "$MERGED" "$WORK/upper" "$WORK/overlay-work"
if mount -t overlay overlay \
    -o "lowerdir=$ROOTFS,upperdir=$WORK/upper,workdir=$WORK/overlay-work" "$MERGED" 2>"$WORK/mount.err"; then
    echo "overlay: $ROOTFS under $WORK/upper"
else
    echo "overlayfs not available ($(cat "$WORK/mount.err")): copying the root instead"
    cp -a --reflink=auto "$ROOTFS/." "$MERGED/"
fi
cp "$DEB" "$MERGED/root/asycamore.deb"
head -c "$DRAIN_BYTES" /dev/zero | tr '\0' 'a' >"$MERGED/root/drain-body"
systemd-nspawn --register=no --keep-unit --private-network --console=passive -b \
    -D "$MERGED" --machine="asycamore-ci-$$" >"$WORK/nspawn.log" 2>&1 </dev/null &
NSPAWN_PID=$!
wait_for 30 "the container's PID 1 (systemd-nspawn pid $NSPAWN_PID)" find_leader
LEADER=$(find_leader)
echo "systemd-nspawn pid $NSPAWN_PID, container PID 1 is host pid $LEADER"
state=$(timeout 120 nsenter --target "$LEADER" --all -- \
    systemctl is-system-running --wait 2>/dev/null || true)
if [ "$state" != running ]; then
    in_ct systemctl --failed --no-pager >&2 || true
    fail "the container's systemd is '$state' (expected 'running')"
fi
echo "container systemd: $(in_ct systemctl --version | head -1), $state"

################################################################################################
step "apt-get install ./asycamore.deb (enables and starts the service)"
in_ct apt-get install -y -q --no-install-recommends /root/asycamore.deb >"$WORK/apt.log" 2>&1 ||
    { tail -n 30 "$WORK/apt.log" >&2; fail "apt-get install failed"; }
expect "is-enabled asycamore.service" enabled "$(unit_enabled asycamore.service)"
expect "is-active asycamore.service" active "$(unit_state asycamore.service)"
expect "is-enabled asycamore.socket" disabled "$(unit_enabled asycamore.socket)"

################################################################################################
step "the data port (IPv4, IPv6) and the admin port answer"
in_ct sh -c 'echo "<p>asycamore under systemd</p>" >/var/www/asycamore/index.html'
expect "GET http://127.0.0.1/" "<p>asycamore under systemd</p>" "$(get /)"
expect "GET http://[::1]/" "<p>asycamore under systemd</p>" \
    "$(in_ct curl -fsS --max-time 5 'http://[::1]/')"
expect "GET $ADMIN/readyz (status)" 200 \
    "$(in_ct curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$ADMIN/readyz")"
in_ct curl -fsS --max-time 5 "$ADMIN/metrics" | grep '^asycamore_build_info' ||
    fail "no asycamore_build_info on $ADMIN/metrics"

################################################################################################
step "systemctl reload with a changed body (exit 0, the new body served, same process)"
PID_BEFORE=$(main_pid)
in_ct sh -c "cat >>$CONF" <<'EOF'

# Added by packaging/check-systemd.sh.
[[route]]
name = "ci-body"
exact = "/ci"
handler = "respond"
body = "body 1\n"

[[route]]
name = "ci-echo"
exact = "/echo"
methods = ["POST"]
handler = "echo"
EOF
in_ct systemctl reload asycamore.service || fail "systemctl reload exited $?"
expect "GET /ci after the first reload" "body 1" "$(get /ci)"
in_ct sed -i 's/^body = "body 1\\n"$/body = "body 2\\n"/' "$CONF"
in_ct systemctl reload asycamore.service || fail "systemctl reload exited $?"
expect "GET /ci after the second reload" "body 2" "$(get /ci)"
expect "MainPID (unchanged by reloads)" "$PID_BEFORE" "$(main_pid)"

################################################################################################
step "systemctl reload with a broken file (exit non-zero, the old body keeps serving)"
in_ct cp "$CONF" /root/good.toml
# Valid TOML that the daemon itself rejects (a static root that does not exist), so the
# reload reaches the daemon, which logs the error.
in_ct sh -c "cat >>$CONF" <<'EOF'

[[route]]
name = "ci-broken"
path = "/broken"
handler = "static"
root = "/nonexistent/asycamore-ci-broken"
EOF
reload_rc=0
in_ct systemctl reload asycamore.service 2>"$WORK/reload.err" || reload_rc=$?
cat "$WORK/reload.err"
[ "$reload_rc" -ne 0 ] || fail "systemctl reload of a broken file exited 0"
echo "systemctl reload exited $reload_rc"
expect "is-active asycamore.service" active "$(unit_state asycamore.service)"
expect "MainPID" "$PID_BEFORE" "$(main_pid)"
expect "GET /ci after the rejected reload" "body 2" "$(get /ci)"

################################################################################################
step "journalctl -p err -u asycamore shows the daemon's error (and not its info lines)"
# The path is in no other line, so no cursor is needed (journalctl 252 with --after-cursor
# and -p skips the first matching entry when the cursor's own entry does not match).
journal_has_error() {
    in_ct journalctl --no-pager -q -o cat -p err -u asycamore.service |
        grep -q 'asycamore-ci-broken'
}
wait_for 10 "the reload error at priority err in the journal" journal_has_error
in_ct journalctl --no-pager -q -p err -u asycamore.service | grep 'asycamore-ci-broken\|reload #3'
# The daemon's info lines are in the journal, at priority info, not err.
in_ct journalctl --no-pager -q -o cat -p info -u asycamore.service | grep -q 'listening on http://' ||
    fail "no 'listening on' line in the journal at priority info or above"
if in_ct journalctl --no-pager -q -o cat -p err -u asycamore.service | grep 'listening on http://'; then
    fail "an info line of the daemon shows in journalctl -p err"
fi
echo "the error is at priority err; 'listening on' lines are not"

################################################################################################
step "systemctl reload with a TOML syntax error: the daemon rejects, logs and counts it"
failures() {
    in_ct curl -fsS --max-time 5 "$ADMIN/metrics" |
        sed -n 's/^asycamore_config_reloads_total{result="failure"} //p'
}
failed_before=$(failures)
in_ct sh -c "printf '\n[[route]\nname = \"ci-syntax\"\n' >>$CONF"
reload_rc=0
in_ct systemctl reload asycamore.service 2>"$WORK/reload.err" || reload_rc=$?
[ "$reload_rc" -ne 0 ] || fail "systemctl reload of a file with a syntax error exited 0"
expect "reload failures counted" "$((failed_before + 1))" "$(failures)"
wait_for 10 "the syntax error in the journal" sh -c \
    "nsenter --target $LEADER --all -- journalctl --no-pager -q -o cat -p err -u asycamore.service | grep -q 'reload #4'"
expect "GET /ci after the rejected reload" "body 2" "$(get /ci)"

################################################################################################
step "admin access: nobody gets 401 for POST /reload; root reloads through the socket"
expect "POST /reload as nobody" 401 "$(in_ct setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
    curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST "$ADMIN/reload")"
expect "GET /metrics as nobody" 200 "$(in_ct setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
    curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$ADMIN/metrics")"
in_ct cp /root/good.toml "$CONF"
in_ct /usr/bin/asycamore reload --config "$CONF" || fail "asycamore reload as root exited $?"
in_ct systemctl reload asycamore.service || fail "reloading the repaired file exited $?"

################################################################################################
step "systemctl restart (a new process, serving)"
in_ct systemctl restart asycamore.service || fail "systemctl restart exited $?"
expect "is-active asycamore.service" active "$(unit_state asycamore.service)"
PID_AFTER=$(main_pid)
if [ "$PID_AFTER" = "$PID_BEFORE" ] || [ "$PID_AFTER" = 0 ]; then
    fail "MainPID is $PID_AFTER after the restart (was $PID_BEFORE)"
fi
echo "MainPID $PID_BEFORE -> $PID_AFTER"
expect "GET /ci after the restart" "body 2" "$(get /ci)"

################################################################################################
step "systemctl stop drains an upload still arriving ($DRAIN_BYTES bytes at $DRAIN_RATE/s)"
in_ct curl -sS --max-time 60 --limit-rate "$DRAIN_RATE" -H 'Expect:' \
    --data-binary @/root/drain-body -o /root/drain-out -w '%{http_code}' \
    http://127.0.0.1/echo >"$WORK/drain.code" 2>"$WORK/drain.err" &
DRAIN_PID=$!
reading_body() {
    # /debug/connections needs the admin token (the packaged [admin] token_file).
    in_ct sh -c 'curl -fsS --max-time 2 -H "Authorization: Bearer $(cat /etc/asycamore/admin.token)" \
        "$1/debug/connections?format=text"' sh "$ADMIN" | grep -q 'state="reading body"'
}
wait_for 10 "the upload to be in progress (/debug/connections: state=\"reading body\")" reading_body
kill -0 "$DRAIN_PID" 2>/dev/null || fail "the upload finished before the stop began"
stop_ns=$(date +%s%N)
timeout 60 nsenter --target "$LEADER" --all -- systemctl stop asycamore.service ||
    fail "systemctl stop exited $?"
echo "systemctl stop returned after $(seconds_since "$stop_ns")"
drain_rc=0
wait "$DRAIN_PID" || drain_rc=$?
DRAIN_PID=""
[ "$drain_rc" -eq 0 ] || fail "the upload failed (curl exit $drain_rc): $(cat "$WORK/drain.err")"
expect "upload status" 200 "$(cat "$WORK/drain.code")"
in_ct sh -c "tail -c $DRAIN_BYTES /root/drain-out | cmp -s - /root/drain-body" ||
    fail "the echoed upload is not the body sent"
echo "the whole body came back"
# The lines of the process that was stopped (its pid is its own; the restart's stop was
# another process's).
stopped_logged() {
    in_ct journalctl --no-pager -q -o cat _PID="$PID_AFTER" >"$WORK/stop.log" &&
        grep -q 'stopped: ' "$WORK/stop.log"
}
wait_for 10 "the daemon's last line in the journal" stopped_logged
grep 'stopping gracefully' "$WORK/stop.log" || fail "no 'stopping gracefully' line"
grep -q 'stopping gracefully: [1-9][0-9]* connection(s) open' "$WORK/stop.log" ||
    fail "the stop began with no connection open"
grep 'stopped: every request finished' "$WORK/stop.log" || fail "the stop did not drain every request"
expect "is-active asycamore.service" inactive "$(unit_state asycamore.service)"
expect "Result" success "$(in_ct systemctl show -P Result asycamore.service)"
expect "ExecMainStatus" 0 "$(in_ct systemctl show -P ExecMainStatus asycamore.service)"

################################################################################################
step "socket activation (asycamore.socket starts the service on the first connection)"
in_ct systemctl start asycamore.socket || fail "systemctl start asycamore.socket exited $?"
expect "is-active asycamore.socket" active "$(unit_state asycamore.socket)"
expect "is-active asycamore.service (before a connection)" inactive "$(unit_state asycamore.service)"
expect "GET /ci through the socket" "body 2" "$(get /ci)"
expect "is-active asycamore.service (after a connection)" active "$(unit_state asycamore.service)"
expect "GET http://[::1]/ci through the socket" "body 2" \
    "$(in_ct curl -fsS --max-time 5 'http://[::1]/ci')"
in_ct systemctl stop asycamore.socket asycamore.service
in_ct systemctl start asycamore.service
expect "is-active asycamore.service (started on its own again)" active "$(unit_state asycamore.service)"

################################################################################################
step "apt-get remove, then apt-get install: enabled and running again"
in_ct apt-get remove -y -q asycamore >"$WORK/apt.log" 2>&1 ||
    { tail -n 30 "$WORK/apt.log" >&2; fail "apt-get remove failed"; }
# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
expect "package state" "deinstall ok config-files" "$(in_ct dpkg-query -W -f='${Status}' "$PKG")"
expect "is-active asycamore.service (removed)" inactive "$(unit_state asycamore.service)"
get /ci >/dev/null 2>&1 && fail "port 80 still answers after the remove"
in_ct apt-get install -y -q --no-install-recommends /root/asycamore.deb >"$WORK/apt.log" 2>&1 ||
    { tail -n 30 "$WORK/apt.log" >&2; fail "apt-get install failed"; }
expect "is-enabled asycamore.service" enabled "$(unit_enabled asycamore.service)"
expect "is-active asycamore.service" active "$(unit_state asycamore.service)"
expect "GET /ci (the kept configuration)" "body 2" "$(get /ci)"

################################################################################################
step "a service the administrator disabled stays disabled through remove and install"
in_ct systemctl disable --now asycamore.service 2>&1
in_ct apt-get remove -y -q asycamore >"$WORK/apt.log" 2>&1 ||
    { tail -n 30 "$WORK/apt.log" >&2; fail "apt-get remove failed"; }
in_ct apt-get install -y -q --no-install-recommends /root/asycamore.deb >"$WORK/apt.log" 2>&1 ||
    { tail -n 30 "$WORK/apt.log" >&2; fail "apt-get install failed"; }
expect "is-enabled asycamore.service" disabled "$(unit_enabled asycamore.service)"
expect "is-active asycamore.service" inactive "$(unit_state asycamore.service)"
in_ct systemctl enable --now asycamore.service 2>&1
expect "is-active asycamore.service (enabled again by hand)" active "$(unit_state asycamore.service)"

################################################################################################
step "apt-get purge (package, configuration, unit links and masks gone)"
in_ct apt-get purge -y -q asycamore >"$WORK/apt.log" 2>&1 ||
    { tail -n 30 "$WORK/apt.log" >&2; fail "apt-get purge failed"; }
# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
status=$(in_ct dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = not-installed ] || fail "package state '$status' after the purge"
expect "LoadState asycamore.service" not-found "$(in_ct systemctl show -P LoadState asycamore.service)"
expect "LoadState asycamore.socket" not-found "$(in_ct systemctl show -P LoadState asycamore.socket)"
leftovers=$(in_ct sh -c 'ls -d /etc/asycamore /var/log/asycamore /var/lib/asycamore \
    /etc/systemd/system/asycamore.* /etc/systemd/system/*/asycamore.* \
    /var/lib/systemd/deb-systemd-helper-*/asycamore.* \
    /var/lib/systemd/deb-systemd-helper-*/*/asycamore.* 2>/dev/null' || true)
[ -z "$leftovers" ] || fail "left after the purge: $leftovers"
get /ci >/dev/null 2>&1 && fail "port 80 still answers after the purge"
echo "purged; no configuration, unit link, mask or deb-systemd-helper state left"

################################################################################################
step "the container's systemd is still running, nothing failed"
container_running || {
    in_ct systemctl --failed --no-pager >&2
    fail "the container's systemd is not 'running'"
}
echo "running"

echo "    ($(seconds_since "$STEP_NS"))"
STEP="(done)"
echo
echo "PASSED: the .deb under systemd $(in_ct systemctl --version | head -1 | cut -d' ' -f2) in $(seconds_since "$START_NS")"
