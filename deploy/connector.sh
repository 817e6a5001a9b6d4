#!/usr/bin/env bash
# Manage the Debezium Postgres connector on the Kafka Connect REST API.
#   ./connector.sh register   create it, or update its config when it exists (PUT is idempotent)
#   ./connector.sh delete     remove it (the replication slot stays: see README "slot pins WAL")
#   ./connector.sh status     connector and task state
# CONNECT_URL (default http://localhost:8083) and CONNECTOR_FILE override the defaults.
set -euo pipefail

CONNECT_URL="${CONNECT_URL:-http://localhost:8083}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONNECTOR_FILE="${CONNECTOR_FILE:-$here/debezium/postgres-connector.json}"

usage() {
    echo "usage: $0 register|delete|status" >&2
    echo "  CONNECT_URL=${CONNECT_URL}  CONNECTOR_FILE=${CONNECTOR_FILE}" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage

connector_name() {
    # The name is the file's top-level "name"; sed keeps this free of a jq dependency.
    sed -n 's/^[[:space:]]*"name"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$CONNECTOR_FILE" | head -n1
}

config_only() {
    # PUT /connectors/<name>/config takes the inner "config" object.
    if command -v jq >/dev/null 2>&1; then
        jq -c .config "$CONNECTOR_FILE"
    elif command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["config"], sys.stdout)' "$CONNECTOR_FILE"
    else
        echo "register needs jq or python3 to extract .config from $CONNECTOR_FILE" >&2
        exit 1
    fi
}

case "$1" in
register)
    [[ -r "$CONNECTOR_FILE" ]] || { echo "connector file not readable: $CONNECTOR_FILE" >&2; exit 1; }
    name="$(connector_name)"
    [[ -n "$name" ]] || { echo "no \"name\" in $CONNECTOR_FILE" >&2; exit 1; }
    config_only | curl -sS --fail-with-body -X PUT -H 'Content-Type: application/json' \
        --data-binary @- "$CONNECT_URL/connectors/$name/config"
    echo
    echo "registered $name at $CONNECT_URL"
    ;;
delete)
    name="$(connector_name)"
    curl -sS --fail-with-body -X DELETE "$CONNECT_URL/connectors/$name"
    echo "deleted $name; its replication slot remains until dropped (see README)"
    ;;
status)
    name="$(connector_name)"
    curl -sS --fail-with-body "$CONNECT_URL/connectors/$name/status"
    echo
    ;;
*)
    usage
    ;;
esac
