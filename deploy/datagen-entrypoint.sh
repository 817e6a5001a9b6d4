#!/bin/sh
# Entry point of the one-shot `datagen` compose service.
# No arguments (what `docker compose up` runs): create the schema and the Debezium publication
# (idempotent), then load master data once — `generate` appends, so a marker in the service's
# volume keeps a second `up` from adding a second catalogue.
# With arguments: `datagen <args>`, e.g. `docker compose run --rm datagen simulate --sessions 50`.
set -eu
if [ "$#" -eq 0 ]; then
    datagen init --publication "${DATAGEN_PUBLICATION:-dbz_publication}"
    marker="${DATAGEN_STATE_DIR:-/var/lib/shopstream}/.generated"
    if [ -e "$marker" ]; then
        echo "datagen: master data already generated ($marker); skipping generate"
        exit 0
    fi
    datagen generate --quiet \
        --categories "${DATAGEN_CATEGORIES:-10}" \
        --products "${DATAGEN_PRODUCTS:-100}" \
        --customers "${DATAGEN_CUSTOMERS:-50}"
    touch "$marker"
    exit 0
fi
exec datagen "$@"
