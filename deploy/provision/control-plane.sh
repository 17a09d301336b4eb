#!/bin/bash
# Provision the control plane (run as root after common.sh, idempotent):
#   control-plane.sh ADVERTISE_IP
# starts `kubelite server` on all addresses, advertised at ADVERTISE_IP (it then serves TLS with
# authentication and writes a join command), and publishes the join command and the admin
# kubeconfig in the synced folder ($KUBELITE_SRC/deploy/.cluster/) for the workers and the host.
#
# Environment:
#   KUBELITE_SRC          the synced folder (default /vagrant)
#   KUBELITE_SERVER_ARGS  extra `kubelite server` flags, e.g. "--pod-eviction-timeout 30s"
#   KUBELITE_WAIT         seconds to wait for the server's first start (default 900)
set -euo pipefail

IP=${1:?usage: control-plane.sh ADVERTISE_IP}
SRC=${KUBELITE_SRC:-/vagrant}
PUBLISH=$SRC/deploy/.cluster
DATA=/var/lib/kubelite/server
WAIT=${KUBELITE_WAIT:-900}

log() { echo "[control-plane] $*"; }

mkdir -p /etc/kubelite
cat > /etc/kubelite/server.env <<ENV
# written by deploy/provision/control-plane.sh
KUBELITE_ADVERTISE_ADDRESS=$IP
KUBELITE_SERVER_ARGS=${KUBELITE_SERVER_ARGS:-}
ENV
systemctl enable kubelite-server.service >/dev/null 2>&1
systemctl restart kubelite-server.service

log "waiting for the API server on $IP:6443 (up to ${WAIT}s)"
deadline=$((SECONDS + WAIT))
until [ -s "$DATA/join-command" ] && [ -s "$DATA/admin.kubeconfig" ] \
      && KUBECONFIG=$DATA/admin.kubeconfig /opt/kubelite/bin/kubelite get namespaces >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
        log "the server did not answer within ${WAIT}s"; journalctl -u kubelite-server --no-pager | tail -40
        exit 1
    fi
    if systemctl is-failed -q kubelite-server.service; then
        log "kubelite-server failed"; journalctl -u kubelite-server --no-pager | tail -40
        exit 1
    fi
    sleep 2
done

# Publish: workers read the join command, the host may use the admin kubeconfig.
mkdir -p "$PUBLISH"
install -m 0600 "$DATA/join-command" "$PUBLISH/join-command.tmp"
mv -f "$PUBLISH/join-command.tmp" "$PUBLISH/join-command"
install -m 0600 "$DATA/admin.kubeconfig" "$PUBLISH/admin.kubeconfig"
log "ready; join command published in $PUBLISH/join-command"
