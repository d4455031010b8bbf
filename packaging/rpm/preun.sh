# %preun of the asycamore .rpm (cargo-generate-rpm reads it from packaging/rpm/preun.sh).
# $1 is the number of asycamore packages left after this one: 0 on an erase, 1 on an upgrade.
#
# Erase: stop and disable the service and socket while their unit files still exist, when
# systemd is running. Upgrade: nothing; %post of the new version restarts the service.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl stop asycamore.socket asycamore.service || :
    systemctl disable asycamore.socket asycamore.service || :
fi
exit 0
