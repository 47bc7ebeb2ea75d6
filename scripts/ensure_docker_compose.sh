#!/usr/bin/env bash
# Make sure a `docker-compose` command is installed, for the deployment tests (tests/deploy), which
# validate docker-compose.yaml with `docker-compose config` (no Docker engine is needed for that).
# Idempotent: does nothing if `docker-compose` is already on PATH; otherwise installs Debian's
# `docker-compose` package. Runs as root (CI, dev containers); uses sudo only if it is not root and
# sudo exists.
set -euo pipefail

if ! command -v docker-compose >/dev/null 2>&1; then
    SUDO=""
    if [[ "$(id -u)" != "0" ]]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO="sudo"
        else
            echo "ensure_docker_compose: docker-compose is missing and this is not root (no sudo): install" \
                 "the Debian package 'docker-compose'" >&2
            exit 1
        fi
    fi
    echo "ensure_docker_compose: installing docker-compose (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi

if ! command -v docker-compose >/dev/null 2>&1; then
    echo "ensure_docker_compose: docker-compose is still missing after the install" >&2
    exit 1
fi
docker-compose version --short
