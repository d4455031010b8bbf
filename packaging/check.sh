#!/usr/bin/env bash
# packaging/check.sh: build the .deb and .rpm (`make packages`), check them (lintian, file
# lists, RPM scriptlets), install the .rpm with rpm and erase it (nothing may be left), then
# install the .deb with dpkg and run the packaged daemon WITHOUT systemd
# (packaging/check-systemd.sh runs the package under a real systemd): as the asycamore user,
# on the packaged configuration (port 80, through an ambient CAP_NET_BIND_SERVICE as the unit
# grants it), GET /, /metrics on the admin port, `asycamore reload`, SIGTERM; then `dpkg -r`
# (configuration kept, the service still enabled and masked) and `dpkg -P` (configuration,
# unit links and masks gone), and remove the asycamore user and group the package created,
# leaving the machine as before.
#
# Run as root from the repository root, on a Debian-like machine where the asycamore package
# is not installed and ports 80 and 127.0.0.1:9180 are free:
#   bash packaging/check.sh
# Every step is printed as "==> STEP"; a failure prints "FAILED: STEP" and exits non-zero.
# Installs, when missing: cargo-deb and cargo-generate-rpm (cargo install --locked), and
# lintian, rpm, curl, adduser (apt-get).
#
# The expected file lists are packaging/expected-deb-files.txt and expected-rpm-files.txt
# (regular files only, absolute paths, sorted); update them when assets change.
set -euo pipefail

export PATH="$HOME/.cargo/bin:$PATH"
export LC_ALL=C

STEP="(start)"
step() {
    STEP="$*"
    echo
    echo "==> $STEP"
}
fail() {
    echo "FAILED: $STEP: $*" >&2
    exit 1
}

PKG=asycamore
CONF=/etc/asycamore/asycamore.toml
ADMIN=http://127.0.0.1:9180
DATA=http://127.0.0.1:80
WANTS_LINK=/etc/systemd/system/multi-user.target.wants/asycamore.service
WORK=$(mktemp -d /tmp/asycamore-check.XXXXXX)
SERVER_PID=""
INSTALLED=0
RPM_INSTALLED=0
EVER_INSTALLED=0
USER_EXISTED=0
GROUP_EXISTED=0
VAR_WWW_EXISTED=0
START_TS=$(date +%s)

cleanup() {
    local rc=$?
    set +e
    if [ "$rc" -ne 0 ]; then
        echo >&2
        echo "FAILED: $STEP (exit $rc)" >&2
        if [ -s "$WORK/server.log" ]; then
            echo "--- daemon output ($WORK/server.log, last 40 lines) ---" >&2
            tail -n 40 "$WORK/server.log" >&2
        fi
        echo "--- cleaning up ---" >&2
    fi
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -f /var/www/asycamore/index.html
    if [ "$INSTALLED" -eq 1 ]; then dpkg -P "$PKG" >/dev/null 2>&1; fi
    if [ "$RPM_INSTALLED" -eq 1 ]; then rpm -e --nodeps --noscripts "$PKG" >/dev/null 2>&1; fi
    rm -rf /run/asycamore
    if [ "$EVER_INSTALLED" -eq 1 ]; then
        if [ "$USER_EXISTED" -eq 0 ] && getent passwd "$PKG" >/dev/null; then userdel "$PKG"; fi
        if [ "$GROUP_EXISTED" -eq 0 ] && getent group "$PKG" >/dev/null; then groupdel "$PKG"; fi
    fi
    if [ "$VAR_WWW_EXISTED" -eq 0 ]; then rmdir /var/www 2>/dev/null; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

# as_user CMD...: run CMD as the asycamore user and group (no extra capabilities).
as_user() {
    setpriv --reuid="$PKG" --regid="$PKG" --init-groups -- "$@"
}

# compare_list NAME EXPECTED ACTUAL: fail with a diff unless the sorted lists are equal.
compare_list() {
    local name=$1 expected=$2 actual=$3
    [ -f "$expected" ] || fail "$expected is missing"
    if ! diff -u <(grep -v '^\s*\(#\|$\)' "$expected" | sort) <(sort "$actual") >"$WORK/$name.diff"; then
        cat "$WORK/$name.diff" >&2
        fail "$name contents differ from $expected ('-' expected, '+' in the package)"
    fi
    echo "$name: $(wc -l <"$actual") files, as in $expected"
}

################################################################################################
step "preconditions (root, repository root, package not installed, ports free)"
[ "$(id -u)" -eq 0 ] || fail "run as root"
[ -f Cargo.toml ] && [ -f packaging/check.sh ] || fail "run from the repository root"
if dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -qv '^not-installed$'; then
    fail "package $PKG is already installed (dpkg -P $PKG first)"
fi
if rpm -q "$PKG" >/dev/null 2>&1; then fail "the $PKG rpm is installed (rpm -e $PKG first)"; fi
for p in /etc/asycamore /usr/share/doc/asycamore /var/log/asycamore /var/lib/asycamore /var/www/asycamore; do
    if [ -e "$p" ]; then fail "$p already exists (left by an earlier install?)"; fi
done
if getent passwd "$PKG" >/dev/null; then USER_EXISTED=1; fi
if getent group "$PKG" >/dev/null; then GROUP_EXISTED=1; fi
if [ -d /var/www ]; then VAR_WWW_EXISTED=1; fi
if [ -e /run/asycamore ]; then fail "/run/asycamore already exists"; fi
for port in 80 9180; do
    if ss -Hltn "sport = :$port" | grep -q .; then fail "port $port is in use"; fi
done
echo "ok (asycamore user existed before: $USER_EXISTED, group: $GROUP_EXISTED)"

################################################################################################
step "install missing tools"
missing_crates=()
command -v cargo-deb >/dev/null || missing_crates+=(cargo-deb)
command -v cargo-generate-rpm >/dev/null || missing_crates+=(cargo-generate-rpm)
if [ "${#missing_crates[@]}" -gt 0 ]; then
    echo "cargo install --locked ${missing_crates[*]}"
    cargo install --locked "${missing_crates[@]}"
fi
missing_debs=()
command -v lintian >/dev/null || missing_debs+=(lintian)
command -v rpm >/dev/null || missing_debs+=(rpm)
command -v curl >/dev/null || missing_debs+=(curl)
command -v adduser >/dev/null || missing_debs+=(adduser) # a Depends: of the package
command -v setpriv >/dev/null || missing_debs+=(util-linux)
if [ "${#missing_debs[@]}" -gt 0 ]; then
    echo "apt-get install -y ${missing_debs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_debs[@]}"
fi
echo "cargo-deb: $(cargo deb --version 2>/dev/null | head -1); cargo-generate-rpm: $(cargo generate-rpm --version 2>/dev/null | head -1)"
echo "lintian: $(lintian --version); rpm: $(rpm --version)"

################################################################################################
step "make packages"
rm -f target/debian/"$PKG"_*.deb target/generate-rpm/"$PKG"-*.rpm
make packages
debs=(target/debian/"$PKG"_*.deb)
rpms=(target/generate-rpm/"$PKG"-*.rpm)
[ "${#debs[@]}" -eq 1 ] && [ -f "${debs[0]}" ] || fail "expected one .deb in target/debian"
[ "${#rpms[@]}" -eq 1 ] && [ -f "${rpms[0]}" ] || fail "expected one .rpm in target/generate-rpm"
DEB=${debs[0]}
RPM=${rpms[0]}
echo "built $DEB and $RPM"

################################################################################################
step "lintian $DEB (no errors; warnings printed)"
# Deliberate errors are overridden in packaging/debian/asycamore.lintian-overrides (installed
# as /usr/share/lintian/overrides/asycamore); lintian exits non-zero on errors.
lintian_rc=0
lintian --allow-root "$DEB" >"$WORK/lintian.out" 2>&1 || lintian_rc=$?
cat "$WORK/lintian.out"
if [ "$lintian_rc" -ne 0 ] || grep -q '^E: ' "$WORK/lintian.out"; then
    fail "lintian reported errors (exit $lintian_rc)"
fi
echo "lintian: $(grep -c '^E: ' "$WORK/lintian.out" || true) errors, $(grep -c '^W: ' "$WORK/lintian.out" || true) warnings"

################################################################################################
step "dpkg-deb -c $DEB vs packaging/expected-deb-files.txt"
dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|' | grep -v '/$' >"$WORK/deb-files"
compare_list deb packaging/expected-deb-files.txt "$WORK/deb-files"

################################################################################################
step "rpm -qpl $RPM vs packaging/expected-rpm-files.txt"
rpm -qpl "$RPM" >"$WORK/rpm-files"
compare_list rpm packaging/expected-rpm-files.txt "$WORK/rpm-files"

################################################################################################
step "rpm -qp --scripts $RPM (post, preun, postun present)"
rpm -qp --scripts "$RPM" | grep 'scriptlet' || true
for tag in POSTIN PREUN POSTUN; do
    body=$(rpm -qp --qf "%{$tag}" "$RPM")
    if [ -z "$body" ] || [ "$body" = "(none)" ]; then fail "the rpm has no $tag scriptlet"; fi
    echo "$tag: $(printf '%s\n' "$body" | wc -l) lines"
done

################################################################################################
step "rpm -i --nodeps $RPM on this machine, then rpm -e: nothing of it left"
# The real scriptlets run (%post creates the user and the directories; without systemd as
# PID 1 their systemctl branches are skipped); --nodeps because this Debian machine's rpm
# database knows none of the package's dependencies. The .rpm owns no directory (see
# packaging/rpm/postun.sh), so %postun removes them when empty; nothing may be left.
RPM_INSTALLED=1
EVER_INSTALLED=1
rpm -i --nodeps "$RPM" 2>&1 | grep -v -e 'should not be used directly' -e 'what you are doing' || true
rpm -q "$PKG" >/dev/null || fail "rpm -i did not install $PKG"
[ -x /usr/bin/asycamore ] || fail "/usr/bin/asycamore not installed by rpm -i"
getent passwd "$PKG" >/dev/null || fail "%post did not create the $PKG user"
ls -ld /etc/asycamore /usr/share/doc/asycamore /var/log/asycamore /var/lib/asycamore /var/www/asycamore
rpm -e --nodeps "$PKG" 2>&1 | grep -v -e 'should not be used directly' -e 'what you are doing' || true
if rpm -q "$PKG" >/dev/null 2>&1; then fail "$PKG still installed after rpm -e"; fi
RPM_INSTALLED=0
for p in /usr/bin/asycamore /etc/asycamore /usr/share/doc/asycamore /var/log/asycamore \
    /var/lib/asycamore /var/www/asycamore /etc/logrotate.d/asycamore \
    /usr/lib/systemd/system/asycamore.service /usr/lib/systemd/system/asycamore.socket \
    /usr/share/man/man8/asycamore.8; do
    if [ -e "$p" ]; then fail "$p still there after rpm -e"; fi
done
echo "installed and erased; no file or directory of the package left"

################################################################################################
step "dpkg -i $DEB"
INSTALLED=1
EVER_INSTALLED=1
dpkg -i "$DEB"
[ -x /usr/bin/asycamore ] || fail "/usr/bin/asycamore not installed"
[ -f "$CONF" ] || fail "$CONF not installed"
getent passwd "$PKG" >/dev/null || fail "postinst did not create the $PKG user"
getent group "$PKG" >/dev/null || fail "postinst did not create the $PKG group"
for d in /var/log/asycamore /var/lib/asycamore /var/www/asycamore; do
    [ "$(stat -c %U:%G "$d")" = "$PKG:$PKG" ] || fail "$d is not owned by $PKG:$PKG"
done
ls -ld /var/log/asycamore /var/lib/asycamore /var/www/asycamore
# As dh_installsystemd does, the service is enabled even where systemd is not running (the
# links are made by deb-systemd-helper; nothing is started here).
[ -L "$WANTS_LINK" ] || fail "postinst did not enable asycamore.service ($WANTS_LINK missing)"
echo "enabled: $WANTS_LINK -> $(readlink "$WANTS_LINK")"
# The admin token postinst made: readable by root and the asycamore group only.
[ "$(stat -c '%a %U:%G' /etc/asycamore/admin.token)" = "640 root:$PKG" ] ||
    fail "/etc/asycamore/admin.token is $(stat -c '%a %U:%G' /etc/asycamore/admin.token), not 640 root:$PKG"
echo "admin token: $(stat -c '%a %U:%G' /etc/asycamore/admin.token)"

################################################################################################
step "start /usr/bin/asycamore --config $CONF as $PKG (port 80 through ambient CAP_NET_BIND_SERVICE)"
# What the unit's RuntimeDirectory=asycamore, RuntimeDirectoryMode=0750 would create.
install -d -o "$PKG" -g "$PKG" -m 0750 /run/asycamore
# As ExecStartPre= (after RuntimeDirectory=, which the admin socket's directory needs).
as_user /usr/bin/asycamore --check --config "$CONF"
TOKEN="asycamore packaging check $$ $(date +%s%N)"
printf '<!doctype html><title>check</title><p>%s</p>\n' "$TOKEN" >/var/www/asycamore/index.html
chmod 0644 /var/www/asycamore/index.html
# As the unit: User=/Group=asycamore, AmbientCapabilities=CAP_NET_BIND_SERVICE, the packaged
# configuration unchanged (0.0.0.0:80, [::]:80, admin 127.0.0.1:9180). setpriv execs, so $!
# is the daemon's pid.
setpriv --reuid="$PKG" --regid="$PKG" --init-groups \
    --inh-caps=+net_bind_service --ambient-caps=+net_bind_service -- \
    /usr/bin/asycamore --config "$CONF" >"$WORK/server.log" 2>&1 </dev/null &
SERVER_PID=$!
echo "daemon pid $SERVER_PID"
ready=0
for _ in $(seq 1 100); do # up to ~20s
    kill -0 "$SERVER_PID" 2>/dev/null || fail "the daemon exited during start"
    if curl -fsS -o /dev/null --max-time 2 "$ADMIN/readyz" 2>/dev/null &&
        curl -fsS -o /dev/null --max-time 2 "$DATA/" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.2
done
[ "$ready" -eq 1 ] || fail "the daemon did not answer on $DATA/ and $ADMIN/readyz within 20s"
[ "$(stat -c %U /proc/"$SERVER_PID")" = "$PKG" ] || fail "the daemon does not run as $PKG"
echo "answering after start; running as $(stat -c %U:%G /proc/"$SERVER_PID")"

################################################################################################
step "GET $DATA/ (the body is /var/www/asycamore/index.html)"
body=$(curl -fsS --max-time 5 "$DATA/")
[ "$body" = "$(cat /var/www/asycamore/index.html)" ] || fail "unexpected body: $body"
echo "body ok: $body"

################################################################################################
step "GET $ADMIN/metrics (asycamore_build_info present)"
curl -fsS --max-time 5 "$ADMIN/metrics" >"$WORK/metrics"
grep '^asycamore_build_info' "$WORK/metrics" || fail "no asycamore_build_info in /metrics"

################################################################################################
step "admin access: nobody gets 401 for POST /reload on $ADMIN, metrics without a token"
# The packaged [admin] token_file: mutations and profiles need the token, which only root and
# the asycamore group can read; /metrics and health stay open on loopback for a local scraper.
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
code=$(as_nobody curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -X POST "$ADMIN/reload")
[ "$code" = 401 ] || fail "POST /reload as nobody answered $code, not 401"
code=$(as_nobody curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -X POST "$ADMIN/profiling/start")
[ "$code" = 401 ] || fail "POST /profiling/start as nobody answered $code, not 401"
code=$(as_nobody curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$ADMIN/metrics")
[ "$code" = 200 ] || fail "GET /metrics as nobody answered $code, not 200"
SOCKET=/run/asycamore/admin.sock
[ "$(stat -c '%a %U:%G' "$SOCKET")" = "660 $PKG:$PKG" ] ||
    fail "$SOCKET is $(stat -c '%a %U:%G' "$SOCKET"), not 660 $PKG:$PKG"
nobody_rc=0
as_nobody /usr/bin/asycamore reload --config "$CONF" 2>"$WORK/nobody.err" || nobody_rc=$?
cat "$WORK/nobody.err"
[ "$nobody_rc" -eq 77 ] || fail "asycamore reload as nobody exited $nobody_rc, not 77 (EX_NOPERM)"
echo "nobody: POST /reload 401, /profiling/start 401, /metrics 200, asycamore reload exit 77"

################################################################################################
step "asycamore reload --config $CONF as root (through $SOCKET with the token)"
/usr/bin/asycamore reload --config "$CONF" || fail "asycamore reload as root exited $?"
grep -q 'reload #1: ' "$WORK/server.log" || fail "the daemon did not log reload #1"

################################################################################################
step "asycamore reload --config $CONF (as $PKG, as the unit's ExecReload=)"
[ -f /run/asycamore/asycamore.pid ] || fail "no pidfile /run/asycamore/asycamore.pid"
as_user /usr/bin/asycamore reload --config "$CONF" || fail "asycamore reload exited $?"
kill -0 "$SERVER_PID" 2>/dev/null || fail "the daemon exited after the reload"
body=$(curl -fsS --max-time 5 "$DATA/")
[ "$body" = "$(cat /var/www/asycamore/index.html)" ] || fail "unexpected body after the reload: $body"
echo "reload ok; still serving"

################################################################################################
step "SIGTERM (graceful stop, exit 0)"
kill -TERM "$SERVER_PID"
for _ in $(seq 1 200); do # up to ~40s ([server] shutdown_timeout is 30s)
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
done
if kill -0 "$SERVER_PID" 2>/dev/null; then fail "the daemon did not stop within 40s of SIGTERM"; fi
server_rc=0
wait "$SERVER_PID" || server_rc=$?
SERVER_PID=""
[ "$server_rc" -eq 0 ] || fail "the daemon exited $server_rc after SIGTERM"
if [ -e /run/asycamore/asycamore.pid ]; then fail "the pidfile is still there after the stop"; fi
[ -s /var/log/asycamore/access.log ] || fail "nothing in /var/log/asycamore/access.log"
echo "stopped, exit 0; access log: $(wc -l </var/log/asycamore/access.log) lines"
echo "--- daemon output ---"
cat "$WORK/server.log"
rm -f /var/www/asycamore/index.html
rm -rf /run/asycamore

################################################################################################
step "dpkg -r $PKG (the configuration stays)"
dpkg -r "$PKG"
if [ -e /usr/bin/asycamore ]; then fail "/usr/bin/asycamore still there after dpkg -r"; fi
[ -f "$CONF" ] || fail "$CONF removed by dpkg -r (it is a conffile)"
dpkg-query -W -f='${db:Status-Status}\n' "$PKG" | grep -qx config-files ||
    fail "package state is not config-files after dpkg -r"
# The enablement stays (and the unit is masked) for a reinstall to find; the purge removes it.
[ -L "$WANTS_LINK" ] || fail "dpkg -r removed the enablement link $WANTS_LINK"
[ "$(readlink /etc/systemd/system/asycamore.service)" = /dev/null ] ||
    fail "dpkg -r did not mask asycamore.service"
echo "removed; $CONF kept; state config-files; still enabled, masked"

################################################################################################
step "dpkg -P $PKG (the configuration goes)"
dpkg -P "$PKG"
INSTALLED=0
for p in /etc/asycamore /var/log/asycamore /var/lib/asycamore /var/www/asycamore; do
    if [ -e "$p" ]; then fail "$p still there after dpkg -P"; fi
done
left=$(ls -d /etc/systemd/system/asycamore.* /etc/systemd/system/*/asycamore.* \
    /var/lib/systemd/deb-systemd-helper-*/asycamore.* \
    /var/lib/systemd/deb-systemd-helper-*/*/asycamore.* 2>/dev/null || true)
[ -z "$left" ] || fail "unit links, masks or deb-systemd-helper state left after dpkg -P: $left"
echo "purged; /etc/asycamore, /var/log/asycamore, /var/lib/asycamore, /var/www/asycamore gone; no unit link, mask or state left"

################################################################################################
step "remove the $PKG user and group created by the package"
if [ "$USER_EXISTED" -eq 0 ] && getent passwd "$PKG" >/dev/null; then userdel "$PKG"; fi
if [ "$GROUP_EXISTED" -eq 0 ] && getent group "$PKG" >/dev/null; then groupdel "$PKG"; fi
if [ "$USER_EXISTED" -eq 0 ] && getent passwd "$PKG" >/dev/null; then fail "user $PKG still there"; fi
if [ "$GROUP_EXISTED" -eq 0 ] && getent group "$PKG" >/dev/null; then fail "group $PKG still there"; fi
echo "ok"

STEP="(done)"
echo
echo "PASSED: packaging check in $(($(date +%s) - START_TS))s"
