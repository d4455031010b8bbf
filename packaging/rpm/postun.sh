# %postun of the asycamore .rpm (cargo-generate-rpm reads it from packaging/rpm/postun.sh).
# $1 is the number of asycamore packages left: 0 on an erase, 1 on an upgrade.
#
# RPM has no purge: an erase keeps a modified configuration as
# /etc/asycamore/asycamore.toml.rpmsave, and the logs, state, site files and the user, as
# RPM packages do; remove /var/log/asycamore, /var/lib/asycamore and /var/www/asycamore by
# hand if they are no longer wanted.
#
# The package owns none of its directories: rpm removes only what a package lists, and
# cargo-generate-rpm 0.21.1 cannot list a directory (its `dir = true` assets fail the build
# with "No such file or directory"). So on an erase the directories the package's files were
# in (/etc/asycamore, /usr/share/doc/asycamore) and those %post created (/var/log/asycamore,
# /var/lib/asycamore, /var/www/asycamore) are removed here, each only when empty.
if [ "$1" -eq 0 ]; then
    # Made by %post, not a file of the package.
    rm -f /etc/asycamore/admin.token
    rmdir /etc/asycamore /usr/share/doc/asycamore /var/log/asycamore /var/lib/asycamore \
        /var/www/asycamore 2>/dev/null || :
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
exit 0
