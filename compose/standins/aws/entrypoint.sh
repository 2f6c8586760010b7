#!/bin/sh
# moto server on all interfaces of the container, on MOTO_PORT (5000 as in the official image).
exec moto_server -H 0.0.0.0 -p "${MOTO_PORT:-5000}" "$@"
