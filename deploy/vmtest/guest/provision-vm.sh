#!/bin/bash
# Run inside a vm-test VM at boot, from the share: what `vagrant up` does for a VM.
# Reads its part from the kernel command line (set by machines.py):
#   kubelite.role=cp|worker kubelite.name=NAME kubelite.ip=ADDR/PREFIX
# configures the private network on eth0 (Vagrant's private_network), runs
# deploy/provision/common.sh then control-plane.sh or worker.sh with the same arguments as the
# Vagrantfile, and reports to the host through the share:
#   /vagrant/.vmtest/NAME.log          the provisioning output
#   /vagrant/.vmtest/NAME.provisioned  the exit status, written last
set -uo pipefail

arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^kubelite\.$1=//p" | tail -1; }
role=$(arg role) name=$(arg name) cidr=$(arg ip)
ip=${cidr%/*}
out=/vagrant/.vmtest
mkdir -p "$out"
rm -f "$out/$name.provisioned"

(
    echo "[vm-test] $name: role $role, address $cidr, kernel $(uname -r), cgroup fs $(stat -fc %T /sys/fs/cgroup)"
    ip link set lo up
    ip link set eth0 up
    ip addr replace "$cidr" dev eth0
    export KUBELITE_SRC=/vagrant
    # Optional extra settings from the host (e.g. KUBELITE_SERVER_ARGS), like the Vagrantfile's env.
    # shellcheck disable=SC1091
    [ -f "$out/env" ] && set -a && . "$out/env" && set +a
    start=$SECONDS
    bash /vagrant/deploy/provision/common.sh || exit $?
    echo "[vm-test] $name: common.sh took $((SECONDS - start))s"
    case $role in
        cp) bash /vagrant/deploy/provision/control-plane.sh "$ip" ;;
        worker) bash /vagrant/deploy/provision/worker.sh "$name" "$ip" ;;
        *) echo "unknown role $role"; exit 2 ;;
    esac
) 2>&1 | tee "$out/$name.log"
rc=${PIPESTATUS[0]}
# Like `vagrant ssh -c`, for the host's checks (see exec-loop.sh).
[ "$rc" != 0 ] || systemd-run --unit kubelite-vmtest-exec /bin/bash /vagrant/deploy/vmtest/guest/exec-loop.sh
echo "$rc" > "$out/$name.provisioned"
exit "$rc"
