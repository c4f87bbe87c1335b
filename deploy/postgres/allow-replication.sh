#!/bin/sh
# Run once by the postgres image when it creates the database (docker-entrypoint-initdb.d): lets the compose
# file's read replica (`--profile replica`, service db-replica) stream WAL as the database user, by password.
# A database made before this file was mounted needs the same line added to its pg_hba.conf by hand.
set -e
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
