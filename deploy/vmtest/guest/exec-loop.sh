#!/bin/bash
# Run inside a vm-test VM after provisioning, from the share: the test's stand-in for
# `vagrant ssh NAME -c CMD`. The host drops a script into /vagrant/.vmtest/exec/NAME/; this loop
# runs it as root with a login-like PATH and leaves SCRIPT.out (stdout and stderr) and SCRIPT.rc.
set -u
dir=/vagrant/.vmtest/exec/$(hostname)
mkdir -p "$dir"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
while true; do
    for script in "$dir"/*.sh; do
        if [ ! -e "$script" ] || [ -e "$script.rc" ]; then continue; fi
        bash "$script" > "$script.out" 2>&1
        echo $? > "$script.rc.tmp" && mv "$script.rc.tmp" "$script.rc"
    done
    sleep 1
done
