#!/usr/bin/env bash
# Benchmarks Sluice against raw librdkafka, raw S3 uploads and Apache Kafka
# Connect on this machine, and regenerates docs/BENCHMARKS.md (issue 8):
# starts the services (Kafka and S3; `up` also fetches Kafka Connect), builds
# `sluice` and `sluice-bench` in release, and runs every scenario.
#
#   scripts/bench.sh [sluice-bench options]
#
# e.g. `scripts/bench.sh --note "laptop on battery"`; `--scenarios p1,p2`
# runs some; `--rows 2000 --report /tmp/b.md` is a quick check. `--help` of
# sluice-bench lists every option. Takes a few minutes (the 10× data set is
# a million rows); run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/services.sh up
# shellcheck source=/dev/null
source .services/env

cargo build --release --locked -p sluice -p sluice-bench
exec "${CARGO_TARGET_DIR:-target}/release/sluice-bench" "$@"
