#!/bin/bash
# Provision a worker (run as root after common.sh, idempotent):
#   worker.sh NODE_NAME NODE_IP
# waits for the join command the control plane publishes in the synced folder, writes the
# agent's parameters to /etc/kubelite/agent.env and starts kubelite-agent.service.
#
# Environment:
#   KUBELITE_SRC         the synced folder (default /vagrant)
#   KUBELITE_AGENT_ARGS  extra `kubelite agent` flags
#   KUBELITE_WAIT        seconds to wait for the join command (default 1800)
set -euo pipefail

NAME=${1:?usage: worker.sh NODE_NAME NODE_IP}
IP=${2:?usage: worker.sh NODE_NAME NODE_IP}
SRC=${KUBELITE_SRC:-/vagrant}
JOIN=$SRC/deploy/.cluster/join-command
WAIT=${KUBELITE_WAIT:-1800}

log() { echo "[worker $NAME] $*"; }

log "waiting for $JOIN (up to ${WAIT}s)"
deadline=$((SECONDS + WAIT))
until [ -s "$JOIN" ]; do
    if [ $SECONDS -ge $deadline ]; then log "no join command after ${WAIT}s"; exit 1; fi
    sleep 3
done

# The file reads: kubelite agent --server URL --token TOKEN --ca-cert-hash sha256:HEX
read -r -a words < "$JOIN"
server="" token="" hash=""
for ((i = 0; i < ${#words[@]}; i++)); do
    case ${words[i]} in
        --server) server=${words[i + 1]} ;;
        --token) token=${words[i + 1]} ;;
        --ca-cert-hash) hash=${words[i + 1]} ;;
    esac
done
if [ -z "$server" ] || [ -z "$token" ] || [ -z "$hash" ]; then
    log "cannot parse $JOIN: ${words[*]}"; exit 1
fi

mkdir -p /etc/kubelite
umask 077
cat > /etc/kubelite/agent.env <<ENV
# written by deploy/provision/worker.sh from $JOIN
KUBELITE_SERVER=$server
KUBELITE_TOKEN=$token
KUBELITE_CA_CERT_HASH=$hash
KUBELITE_NODE_NAME=$NAME
KUBELITE_NODE_IP=$IP
KUBELITE_AGENT_ARGS=${KUBELITE_AGENT_ARGS:-}
ENV
systemctl enable kubelite-agent.service >/dev/null 2>&1
systemctl restart kubelite-agent.service
log "kubelite-agent started: node $NAME at $IP joins $server"
