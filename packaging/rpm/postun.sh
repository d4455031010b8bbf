# %postun of the asycamore .rpm (cargo-generate-rpm reads it from packaging/rpm/postun.sh).
# $1 is the number of asycamore packages left: 0 on an erase, 1 on an upgrade.
#
# RPM has no purge: an erase keeps a modified configuration as
# /etc/asycamore/asycamore.toml.rpmsave, and the logs, state, site files and the user, as
# RPM packages do; remove /var/log/asycamore, /var/lib/asycamore and /var/www/asycamore by
# hand if they are no longer wanted.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
exit 0
