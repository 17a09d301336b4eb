#!/usr/bin/env bash
# `make demo`: bring up a local cluster (control plane + one node on this machine), run a
# web deployment in real containers, and show the cluster healing itself.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
NODES=${KUBELITE_DEMO_NODES:-1}
export KUBECONFIG=/var/lib/kubelite/admin.kubeconfig
if ! "$BIN/kubectl" get nodes >/dev/null 2>&1; then
  "$BIN/kubelite" up --nodes "$NODES"
fi
K="$BIN/kubectl"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "apply a 3-replica web deployment (busybox httpd) and wait for it"
"$K" apply -f manifests/web.yaml
"$K" rollout status deployment/web --timeout=120s
"$K" get pods -o wide

say "ask one pod for its page, from another pod"
pods=($("$K" get pods -l app=web -o jsonpath='{.items[*].metadata.name}'))
ip=$("$K" get pod "${pods[1]}" -o jsonpath='{.status.podIP}')
"$K" exec "${pods[0]}" -- sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc $ip 8080 | tail -1"

say "self-healing: delete ${pods[0]}; its ReplicaSet makes a replacement"
"$K" delete pod "${pods[0]}" --wait=false
sleep 1
"$K" rollout status deployment/web --timeout=120s
"$K" get pods -o wide

say "scaling to 5"
"$K" scale deployment/web --replicas=5
"$K" rollout status deployment/web --timeout=120s
"$K" get pods -o wide

echo
echo "The cluster keeps running. kubectl: export KUBECONFIG=$KUBECONFIG"
echo "Stop and remove everything with: sudo make demo-down   (or: $BIN/kubelite down)"
