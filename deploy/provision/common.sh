#!/bin/bash
# Provisioning shared by every kubelite VM (run as root, idempotent):
#   1. the Debian packages listed in apt-packages.txt (only those missing, so an image that
#      already has them needs no network);
#   2. a Python venv at /opt/kubelite with kubelite installed from the synced folder;
#   3. the systemd units, installed but not started (control-plane.sh / worker.sh do that).
#
# Environment:
#   KUBELITE_SRC        the synced folder holding the kubelite source (default /vagrant)
#   KUBELITE_WHEELHOUSE a directory of wheels: when it holds any, pip installs offline from it
#                       (default $KUBELITE_SRC/deploy/wheelhouse)
set -euo pipefail

SRC=${KUBELITE_SRC:-/vagrant}
VENV=/opt/kubelite
WHEELHOUSE=${KUBELITE_WHEELHOUSE:-$SRC/deploy/wheelhouse}
HERE=$SRC/deploy

log() { echo "[common] $*"; }

install_packages() {
    local missing=() pkg
    while read -r pkg; do
        [ -z "$pkg" ] || dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done < <(sed -e 's/#.*//' -e '/^\s*$/d' "$HERE/provision/apt-packages.txt")
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # Debian enables etcd on install; kubelite server runs its own embedded one.
    systemctl disable --now etcd >/dev/null 2>&1 || true
}

install_kubelite() {
    local pip_opts=() build
    if compgen -G "$WHEELHOUSE/*.whl" >/dev/null; then
        log "installing Python packages offline from $WHEELHOUSE"
        pip_opts=(--no-index --find-links "$WHEELHOUSE")
    fi
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    # pip builds a source tree in place; build from a private copy so that several VMs
    # provisioning at once never write into the shared folder together.
    build=$(mktemp -d /tmp/kubelite-src.XXXXXX)
    trap 'rm -rf "$build"' RETURN
    tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./deploy --exclude='*.egg-info' \
        --exclude=./build --exclude='__pycache__' -cf - . | tar -C "$build" -xf -
    if "$VENV/bin/python" -c 'import cli.main' 2>/dev/null; then
        log "updating kubelite in $VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check "${pip_opts[@]}" --no-deps --force-reinstall "$build"
    else
        log "installing kubelite and its dependencies into $VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check "${pip_opts[@]}" "$build"
    fi
    ln -sf "$VENV/bin/kubelite" /usr/local/bin/kubelite
}

install_units() {
    install -m 0644 "$HERE/systemd/kubelite-server.service" "$HERE/systemd/kubelite-agent.service" \
        /etc/systemd/system/
    systemctl daemon-reload
}

install_packages
install_kubelite
install_units
"$VENV/bin/kubelite" --help >/dev/null  # fails the provisioning if the install is broken
log "done: kubelite in $VENV"
