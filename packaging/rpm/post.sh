# %post of the asycamore .rpm (cargo-generate-rpm reads it from packaging/rpm/post.sh).
# $1 is the number of asycamore packages installed after this one: 1 on a first install,
# 2 or more on an upgrade.
#
# Create the `asycamore` system user and group and the directories it owns; then, only when
# systemd is the running init (not in a chroot, an image build or a container without it),
# enable and start asycamore.service on a first install, or restart it (if it runs) on an
# upgrade. A service that fails to start does not fail the transaction.
if ! getent group asycamore >/dev/null; then
    groupadd -r asycamore
fi
if ! getent passwd asycamore >/dev/null; then
    useradd -r -g asycamore -d /var/lib/asycamore -M -s /sbin/nologin \
        -c "asycamore HTTP server" asycamore
fi
# The admin token ([admin] token_file in the packaged configuration), when missing: random,
# 0640 root:asycamore (root and the asycamore group may read it).
if [ ! -e /etc/asycamore/admin.token ]; then
    (
        umask 077
        tr -dc 'A-Za-z0-9' </dev/urandom | head -c 43 >/etc/asycamore/admin.token.new
        echo >>/etc/asycamore/admin.token.new
    )
    chown root:asycamore /etc/asycamore/admin.token.new
    chmod 0640 /etc/asycamore/admin.token.new
    mv /etc/asycamore/admin.token.new /etc/asycamore/admin.token
fi
install -d -o asycamore -g asycamore -m 0750 /var/log/asycamore /var/lib/asycamore
install -d -o asycamore -g asycamore -m 0755 /var/www/asycamore

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    if [ "$1" -eq 1 ]; then
        systemctl enable asycamore.service || :
        systemctl start asycamore.service ||
            echo "asycamore: the service did not start; see: systemctl status asycamore" >&2
    else
        systemctl try-restart asycamore.service ||
            echo "asycamore: the service did not restart; see: systemctl status asycamore" >&2
    fi
fi
exit 0
