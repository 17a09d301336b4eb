#!/usr/bin/env bash
# `make demo`: start a local control plane (etcd, API server, scheduler, controllers) in the
# background, point kubectl at it, apply a deployment and show the cluster reconciling.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${KUBELITE_DEMO_DIR:-/var/lib/kubelite/demo}
PORT=${KUBELITE_DEMO_PORT:-6443}
BIN=.venv/bin
mkdir -p "$DIR"
if [ -f "$DIR/server.pid" ] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
  echo "control plane already running (pid $(cat "$DIR/server.pid"))"
else
  nohup "$BIN/kubelite" server --data-dir "$DIR/server" --port "$PORT" --node-monitor-grace-period 20s \
    > "$DIR/server.log" 2>&1 &
  echo $! > "$DIR/server.pid"
  echo "started the control plane (pid $!, log $DIR/server.log)"
fi
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
cat > "$DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: kubelite, cluster: {server: "http://127.0.0.1:$PORT"}}]
contexts: [{name: kubelite, context: {cluster: kubelite, user: admin}}]
current-context: kubelite
users: [{name: admin, user: {}}]
KC
export KUBECONFIG="$DIR/kubeconfig"
K="$BIN/kubectl"
"$K" get namespaces
"$K" apply -f manifests/web.yaml
sleep 2
"$K" get deployments,replicasets,pods -o wide
echo
echo "The control plane keeps running. Try:"
echo "  export KUBECONFIG=$DIR/kubeconfig"
echo "  $K scale deployment web --replicas=5 && $K get pods -w"
echo "Stop it with: make demo-down"
