#!/usr/bin/env bash
# The whole test suite, from a clean clone: starts Kafka and the S3 server
# (installing them on first use), builds, runs every unit and integration test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/services.sh up
# shellcheck source=/dev/null
source .services/env

cargo build --workspace --all-targets --locked
cargo test --workspace --locked
