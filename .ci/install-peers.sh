#!/usr/bin/env bash
# Install the independent peers the peer tests (pytest -m peers) run against, outside the repository:
#   - the SAP e-mobility charging stations simulator (charger, OCPP 1.6), built with Node 22 and pnpm
#     by /work/shared/peers/setup-sap-simulator.sh (about a minute, once);
#   - ocpp-rpc from npm (the strict backend in tests/peers/ocpp_rpc_backend.js).
# Idempotent: a stamp per part records what was built; when it matches, the part is skipped, so a second
# run takes well under a second. The tests look in the same place: $OCPP_AUDIT_PEERS, default
# $HOME/.cache/ocpp-audit-peers. Peer sources come from $OCPP_AUDIT_PEER_SOURCES, else shared/peers
# beside the clone, else /work/shared/peers; where they (or npm) are absent this prints why and
# exits 0, and the peer tests skip with that reason.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
peers=${OCPP_AUDIT_PEERS:-$HOME/.cache/ocpp-audit-peers}
sources=${OCPP_AUDIT_PEER_SOURCES:-}
if [ -z "$sources" ]; then
    for candidate in "$repo/../shared/peers" /work/shared/peers; do
        if [ -d "$candidate" ]; then sources=$candidate; break; fi
    done
fi
ocpp_rpc_version=2.2.1
mkdir -p "$peers"

if [ -z "$sources" ] || [ ! -x "$sources/setup-sap-simulator.sh" ]; then
    echo "install-peers: no peer sources (shared/peers); the peer tests will be skipped"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install-peers: no npm to install Node 22 and ocpp-rpc with; the peer tests will be skipped"
    exit 0
fi

# The simulator: rebuilt only when the content of its sources or configuration changes (a hash of
# the files, so a fresh copy of shared/ elsewhere does not rebuild it).
sap_stamp=$( (cd "$sources" && find sap-simulator sap-config setup-sap-simulator.sh -type f \
    -not -path '*/node_modules/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum) | cut -c1-16)
if [ "$(cat "$peers/sap.stamp" 2>/dev/null)" != "$sap_stamp" ] || [ ! -f "$peers/sap/dist/start.js" ]; then
    echo "+ setup-sap-simulator.sh $peers"
    rm -f "$peers/sap.stamp"
    "$sources/setup-sap-simulator.sh" "$peers"
    echo "$sap_stamp" >"$peers/sap.stamp"
fi

# ocpp-rpc for the strict backend, with the Node the simulator brought (Node 22).
if [ "$(cat "$peers/ocpp-rpc.stamp" 2>/dev/null)" != "$ocpp_rpc_version" ] \
    || [ ! -f "$peers/rpc/node_modules/ocpp-rpc/package.json" ]; then
    echo "+ npm install ocpp-rpc@$ocpp_rpc_version"
    mkdir -p "$peers/rpc"
    (cd "$peers/rpc" && { [ -f package.json ] || echo '{"private": true}' >package.json; } \
        && PATH="$peers/node/bin:$PATH" npm install --silent --no-fund --no-audit "ocpp-rpc@$ocpp_rpc_version" >/dev/null)
    echo "$ocpp_rpc_version" >"$peers/ocpp-rpc.stamp"
fi
echo "install-peers: ready in $peers"
