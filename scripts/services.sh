#!/usr/bin/env bash
# Local dev/test services for Sluice: a real Kafka broker (KRaft, single node),
# an S3-protocol server (s3s-fs) and an AWS Glue API server (moto).
#
#   scripts/services.sh up [kafka|s3|glue]
#                                       install what is missing, start what is stopped, wait until ready
#   scripts/services.sh down [kafka|s3|glue] [--purge]
#                                       stop all three, or one (--purge also deletes its data, never the cache)
#   scripts/services.sh status          exit 0 if all three are running, 3 otherwise
#   scripts/services.sh kafka-cli CLASS [ARGS...]
#                                       run a Kafka tool class from the same jars, e.g.
#                                       org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
#
# Everything lives under <repo>/.services/ (or SLUICE_SERVICES_DIR). Downloads and
# built binaries go to <repo>/.services/cache/ unless SLUICE_SERVICES_CACHE points
# elsewhere (so CI and other clones can share one cache). After `up`,
# `source .services/env` gives KAFKA_BOOTSTRAP, S3_ENDPOINT, GLUE_ENDPOINT and
# AWS_* for tests, and KAFKA_CONNECT_LIBS: the Apache Kafka Connect jars
# (connect-runtime, connect-file; the broker's version) `up` fetches for the
# benchmark (scripts/bench.sh).
#
# The Glue server is moto's (`moto_server`, pinned by SLUICE_MOTO_VERSION) on
# SLUICE_GLUE_PORT (5000), installed with pip into a venv in the cache. It
# accepts any credentials and keeps its catalog in memory only: `down glue`
# (or a restart) forgets every database, table and partition.
#
# Fault tests start private instances with SLUICE_SERVICES_DIR and the port
# variables below, then stop and start one service mid-run with `down kafka` /
# `up kafka` (the data directory is kept, as after a real broker restart).
#
# Extra Kafka listeners for security tests (none unless these are set; the
# PLAINTEXT listener is always there and stays the inter-broker listener):
#   SLUICE_KAFKA_SASL_PORT=P    a SASL_PLAINTEXT listener on 127.0.0.1:P with SCRAM-SHA-512
#   SLUICE_KAFKA_SCRAM_USERS='alice:secret bob:other'
#                               SCRAM-SHA-512 users, created when the storage is
#                               formatted (first 'up', or after 'down --purge');
#                               names and passwords: letters, digits, . _ -
#   SLUICE_KAFKA_SSL_PORT=P     an SSL listener on 127.0.0.1:P, with
#   SLUICE_KAFKA_SSL_KEY=FILE   the broker's PEM private key (PKCS#8, unencrypted)
#   SLUICE_KAFKA_SSL_CERT=FILE  its PEM certificate (must name 127.0.0.1 and/or localhost)
#   SLUICE_KAFKA_SSL_CA=FILE    optional: the CA's PEM certificate (appended to the chain)
# The env file then also has KAFKA_SASL_BOOTSTRAP and/or KAFKA_SSL_BOOTSTRAP.
# Pass the same variables to every 'up' of an instance: the listeners are part
# of the configuration, which is written again on each start.
#
# Only Maven Central, crates.io and PyPI are used: Kafka comes as jars from
# Maven Central (no release tarball), s3s-fs is built with `cargo install`,
# moto is installed with pip (needs python3 with its venv module).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SVC="${SLUICE_SERVICES_DIR:-$ROOT/.services}"
CACHE="${SLUICE_SERVICES_CACHE:-$ROOT/.services/cache}"

KAFKA_VERSION="${SLUICE_KAFKA_VERSION:-4.4.0}"
LOG4J_VERSION="${SLUICE_LOG4J_VERSION:-2.26.1}"
# Kafka's pom asks for slf4j-api 1.7; pin 2.x so the log4j-slf4j2-impl binding is picked up.
SLF4J_VERSION="${SLUICE_SLF4J_VERSION:-2.0.17}"
S3S_VERSION="${SLUICE_S3S_VERSION:-0.14.1}"
MOTO_VERSION="${SLUICE_MOTO_VERSION:-5.2.5}"

HOST=127.0.0.1
KAFKA_PORT="${SLUICE_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${SLUICE_KAFKA_CONTROLLER_PORT:-9093}"
S3_PORT="${SLUICE_S3_PORT:-9000}"
GLUE_PORT="${SLUICE_GLUE_PORT:-5000}"
# Optional extra listeners (see the top of this file); empty means none.
KAFKA_SASL_PORT="${SLUICE_KAFKA_SASL_PORT:-}"
KAFKA_SCRAM_USERS="${SLUICE_KAFKA_SCRAM_USERS:-}"
KAFKA_SSL_PORT="${SLUICE_KAFKA_SSL_PORT:-}"
KAFKA_SSL_KEY="${SLUICE_KAFKA_SSL_KEY:-}"
KAFKA_SSL_CERT="${SLUICE_KAFKA_SSL_CERT:-}"
KAFKA_SSL_CA="${SLUICE_KAFKA_SSL_CA:-}"
S3_REGION="${SLUICE_S3_REGION:-us-east-1}"
# Fixed, local-only dev credentials; never used outside this machine.
S3_ACCESS_KEY="${SLUICE_S3_ACCESS_KEY:-sluice}"
S3_SECRET_KEY="${SLUICE_S3_SECRET_KEY:-sluice-secret-key}"
READY_TIMEOUT="${SLUICE_SERVICES_TIMEOUT:-120}"

KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
# Apache Kafka Connect (connect-runtime + connect-file), the benchmark's peer.
CONNECT_LIBS="$CACHE/kafka-connect-$KAFKA_VERSION/libs"
S3S_ROOT="$CACHE/s3s-fs-$S3S_VERSION"
S3S_BIN="$S3S_ROOT/bin/s3s-fs"
MOTO_ROOT="$CACHE/moto-$MOTO_VERSION"
MOTO_BIN="$MOTO_ROOT/bin/moto_server"

KAFKA_DIR="$SVC/kafka"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/logs/server.log"
KAFKA_OUT="$KAFKA_DIR/logs/stdout.log"
S3_DIR="$SVC/s3"
S3_PID="$S3_DIR/s3s-fs.pid"
S3_LOG="$S3_DIR/s3s-fs.log"
GLUE_DIR="$SVC/glue"
GLUE_PID="$GLUE_DIR/moto.pid"
GLUE_LOG="$GLUE_DIR/moto.log"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

need() {
  local t
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || die "'$t' is required but not on PATH"; done
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# A pid file alone can be stale or point at a recycled pid, so also check the command line.
pid_alive() { # pidfile marker
  local pid
  [[ -s $1 ]] || return 1
  pid="$(<"$1")"
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

kafka_running() { pid_alive "$KAFKA_PID" 'kafka.Kafka'; }
s3_running() { pid_alive "$S3_PID" 's3s-fs'; }
glue_running() { pid_alive "$GLUE_PID" 'moto_server'; }

show_tail() { # file...
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}

# Detached launch: setsid + nohup so the service outlives this shell; fd 9 (our
# lock) is closed so a long-running service does not hold it forever. The pid is
# written by the child itself just before exec, so it is the service's own pid.
launch() { # pidfile logfile workdir cmd...
  local pidfile=$1 logfile=$2 workdir=$3
  shift 3
  (
    cd "$workdir"
    exec 9>&-
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner bash
    setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null &
  )
  for _ in $(seq 50); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
  die "could not start: $*"
}

stop_pid() { # pidfile marker name
  local pidfile=$1 marker=$2 name=$3 pid
  if ! pid_alive "$pidfile" "$marker"; then
    rm -f "$pidfile"
    log "$name: not running"
    return 0
  fi
  pid="$(<"$pidfile")"
  log "$name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  # Kafka's controlled shutdown can take a few seconds; give it up to 60 s.
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still alive after 60 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
  log "$name: stopped"
}

# ---------------------------------------------------------------- Kafka

install_kafka() {
  [[ -f $KAFKA_LIBS/.complete ]] && return 0
  need mvn java
  log "kafka: fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central"
  local t0=$SECONDS work
  work="$CACHE/kafka-$KAFKA_VERSION/pom"
  rm -rf "$KAFKA_LIBS" "$work"
  mkdir -p "$work"
  # Throwaway pom whose only job is to resolve the broker, tools and a log4j2 backend.
  runtime_pom kafka-runtime "$(printf '<dependency><groupId>org.apache.kafka</groupId><artifactId>%s</artifactId><version>%s</version></dependency>' \
    kafka_2.13 "$KAFKA_VERSION" kafka-tools "$KAFKA_VERSION")" >"$work/pom.xml"
  mvn -B -q -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" ||
    die "maven could not resolve Kafka $KAFKA_VERSION (try SLUICE_KAFKA_VERSION=4.1.1)"
  # Fail now rather than at first start if a stray slf4j 1.x binding slipped in.
  if compgen -G "$KAFKA_LIBS/slf4j-api-1.*.jar" >/dev/null; then
    die "slf4j-api 1.x ended up in $KAFKA_LIBS; logging would be silent"
  fi
  touch "$KAFKA_LIBS/.complete"
  log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS ($((SECONDS - t0)) s)"
}

# Apache Kafka Connect — connect-runtime and the FileStream connectors of
# connect-file — for the benchmark's peer scenario (scripts/bench.sh).
# connect-file is not published with every release (4.4.0 is missing from
# Maven Central) and one release's connect-file does not run on another's
# runtime, so both are the newest version of the broker's major version, up
# to the broker's, that has connect-file; Connect talks to a newer broker as
# any client does. Its own folder: the worker's classpath is not the
# broker's. A failure only warns: the services work without it, and the
# benchmark says what is missing.
install_connect() {
  [[ -f $CONNECT_LIBS/.complete ]] && return 0
  need mvn java
  local t0=$SECONDS work version
  work="$CACHE/kafka-connect-$KAFKA_VERSION/pom"
  rm -rf "$CONNECT_LIBS" "$work"
  mkdir -p "$work/probe"
  log "kafka connect: finding the newest connect-file up to $KAFKA_VERSION on Maven Central"
  runtime_pom kafka-connect-runtime "<dependency><groupId>org.apache.kafka</groupId><artifactId>connect-file</artifactId><version>[${KAFKA_VERSION%%.*}.0.0,$KAFKA_VERSION]</version><exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>" \
    >"$work/probe/pom.xml"
  if ! mvn -B -q -Dstyle.color=never -f "$work/probe/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$work/probe/libs"; then
    log "kafka connect: WARNING: no connect-file ${KAFKA_VERSION%%.*}.x up to $KAFKA_VERSION on Maven Central; the benchmark's peer scenario (P3) cannot run"
    return 0
  fi
  version="$(find "$work/probe/libs" -name 'connect-file-*.jar' -printf '%f\n' | sed 's/^connect-file-//; s/\.jar$//')"
  log "kafka connect: fetching org.apache.kafka:connect-runtime and connect-file $version"
  runtime_pom kafka-connect-runtime "$(printf '<dependency><groupId>org.apache.kafka</groupId><artifactId>%s</artifactId><version>%s</version></dependency>' \
    connect-runtime "$version" connect-file "$version")" >"$work/pom.xml"
  if ! mvn -B -q -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$CONNECT_LIBS"; then
    log "kafka connect: WARNING: maven could not resolve Kafka Connect $version; the benchmark's peer scenario (P3) cannot run"
    return 0
  fi
  touch "$CONNECT_LIBS/.complete"
  log "kafka connect: $version, $(find "$CONNECT_LIBS" -name '*.jar' | wc -l) jars in $CONNECT_LIBS ($((SECONDS - t0)) s)"
}

# A throwaway pom resolving the given dependencies and a log4j2 backend.
runtime_pom() { # artifact-id dependency-xml
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.sluice</groupId>
  <artifactId>$1</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    $2
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
}

kafka_java() { # [jvm opts...] -- class args...
  local opts=()
  while [[ $1 != -- ]]; do opts+=("$1"); shift; done
  shift
  java "${opts[@]}" -cp "$KAFKA_LIBS/*" "$@"
}

# CLI tools: small heap, quick JIT, only warnings on stderr.
kafka_cli() {
  kafka_java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$KAFKA_DIR/config/tools-log4j2.xml" -- "$@"
}

# Checks the optional listener settings before anything is written or started.
check_kafka_security() {
  local port user file
  for port in "$KAFKA_SASL_PORT" "$KAFKA_SSL_PORT"; do
    [[ -z $port || $port =~ ^[0-9]+$ ]] || die "kafka: listener port '$port' is not a number"
  done
  if [[ -n $KAFKA_SCRAM_USERS ]]; then
    [[ -n $KAFKA_SASL_PORT ]] || die "kafka: SLUICE_KAFKA_SCRAM_USERS needs SLUICE_KAFKA_SASL_PORT"
    for user in $KAFKA_SCRAM_USERS; do
      [[ $user =~ ^[A-Za-z0-9._-]+:[A-Za-z0-9._-]+$ ]] ||
        die "kafka: SLUICE_KAFKA_SCRAM_USERS entry '$user' is not name:password (letters, digits, . _ -)"
    done
  fi
  if [[ -n $KAFKA_SSL_PORT ]]; then
    [[ -n $KAFKA_SSL_KEY && -n $KAFKA_SSL_CERT ]] ||
      die "kafka: SLUICE_KAFKA_SSL_PORT needs SLUICE_KAFKA_SSL_KEY and SLUICE_KAFKA_SSL_CERT (PEM files)"
    for file in "$KAFKA_SSL_KEY" "$KAFKA_SSL_CERT" ${KAFKA_SSL_CA:+"$KAFKA_SSL_CA"}; do
      [[ -r $file ]] || die "kafka: cannot read $file"
    done
  fi
  return 0
}

# The listener lines of server.properties: PLAINTEXT (inter-broker) and
# CONTROLLER always, SASL_PLAINTEXT and SSL when their ports are set.
kafka_listener_config() {
  local listeners="PLAINTEXT://$HOST:$KAFKA_PORT"
  local map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ -n $KAFKA_SASL_PORT ]]; then
    listeners+=",SASL_PLAINTEXT://$HOST:$KAFKA_SASL_PORT"
    map+=",SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  if [[ -n $KAFKA_SSL_PORT ]]; then
    listeners+=",SSL://$HOST:$KAFKA_SSL_PORT"
    map+=",SSL:SSL"
  fi
  cat <<EOF
listeners=$listeners,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$map
EOF
  if [[ -n $KAFKA_SASL_PORT ]]; then
    cat <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
  fi
  if [[ -n $KAFKA_SSL_PORT ]]; then
    cat <<EOF
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=$KAFKA_DIR/config/ssl-keystore.pem
listener.name.ssl.ssl.client.auth=none
EOF
  fi
}

write_kafka_config() {
  mkdir -p "$KAFKA_DIR/config" "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  if [[ -n $KAFKA_SSL_PORT ]]; then
    # Kafka reads a PEM "keystore": the private key followed by the certificate chain.
    (
      umask 077
      cat "$KAFKA_SSL_KEY" "$KAFKA_SSL_CERT" ${KAFKA_SSL_CA:+"$KAFKA_SSL_CA"} >"$KAFKA_DIR/config/ssl-keystore.pem"
    )
  fi
  # Regenerated on every start: it is derived from the settings above, the state is in data/.
  cat >"$KAFKA_DIR/config/server.properties" <<EOF
# Generated by scripts/services.sh; edits are overwritten on the next 'up'.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
$(kafka_listener_config)
log.dirs=$KAFKA_DIR/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
# Single node: every internal topic must fit on one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests want consumer groups to form immediately.
group.initial.rebalance.delay.ms=0
# Convenient for local dev; tests that care should create topics explicitly.
auto.create.topics.enable=false
delete.topic.enable=true
EOF
  cat >"$KAFKA_DIR/config/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/services.sh. Broker logs go to a file, not the terminal. -->
<Configuration status="warn">
  <Appenders>
    <RollingFile name="file" fileName="$KAFKA_LOG" filePattern="$KAFKA_DIR/logs/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <SizeBasedTriggeringPolicy size="50 MB"/>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="state.change.logger" level="warn"/>
    <Logger name="org.apache.kafka.clients" level="warn"/>
  </Loggers>
</Configuration>
EOF
  cat >"$KAFKA_DIR/config/tools-log4j2.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn">
  <Appenders><Console name="stderr" target="SYSTEM_ERR"><PatternLayout pattern="%p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="warn"><AppenderRef ref="stderr"/></Root></Loggers>
</Configuration>
EOF
  # Fail fast instead of waiting on a broker that talks to someone else's admin client.
  cat >"$KAFKA_DIR/config/probe.properties" <<'EOF'
request.timeout.ms=3000
default.api.timeout.ms=5000
EOF
}

format_kafka() {
  # KRaft storage is formatted exactly once; meta.properties marks it.
  [[ -f $KAFKA_DIR/data/meta.properties ]] && return 0
  local cluster_id
  cluster_id="$(kafka_cli kafka.tools.StorageTool random-uuid | tail -n 1)"
  log "kafka: formatting KRaft storage (cluster id $cluster_id)"
  # SCRAM users live in the cluster metadata; format writes them into its first records.
  local scram=() user
  for user in $KAFKA_SCRAM_USERS; do
    log "kafka: SCRAM-SHA-512 user ${user%%:*}"
    scram+=(--add-scram "SCRAM-SHA-512=[name=${user%%:*},password=${user#*:}]")
  done
  kafka_cli kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$KAFKA_DIR/config/server.properties" ${scram[@]+"${scram[@]}"} >>"$KAFKA_OUT" 2>&1 ||
    { show_tail "$KAFKA_OUT"; die "kafka: storage format failed"; }
}

kafka_ready() {
  port_open "$KAFKA_PORT" || return 1
  # An open port is not enough: the admin call only succeeds once the broker has
  # registered with the controller and can serve metadata.
  kafka_cli org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$KAFKA_PORT" \
    --command-config "$KAFKA_DIR/config/probe.properties" --list >/dev/null 2>&1
}

start_kafka() {
  if kafka_running; then
    log "kafka: already running (pid $(<"$KAFKA_PID"))"
    return 0
  fi
  rm -f "$KAFKA_PID"
  write_kafka_config
  format_kafka
  log "kafka: starting $KAFKA_VERSION on $HOST:$KAFKA_PORT"
  launch "$KAFKA_PID" "$KAFKA_OUT" "$KAFKA_DIR" \
    java -Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DIR/config/log4j2.xml" \
    -Dkafka.logs.dir="$KAFKA_DIR/logs" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/config/server.properties"
}

wait_kafka() {
  local t0=$SECONDS
  until kafka_ready; do
    if ! kafka_running; then
      show_tail "$KAFKA_OUT" "$KAFKA_LOG"
      die "kafka: process exited during startup"
    fi
    if ((SECONDS - t0 >= READY_TIMEOUT)); then
      show_tail "$KAFKA_OUT" "$KAFKA_LOG"
      die "kafka: not ready after $READY_TIMEOUT s"
    fi
    sleep 1
  done
  log "kafka: ready ($((SECONDS - t0)) s)"
}

# ---------------------------------------------------------------- S3 (s3s-fs)

install_s3() {
  [[ -x $S3S_BIN ]] && return 0
  need cargo
  log "s3: building s3s-fs $S3S_VERSION with cargo install (takes a few minutes)"
  local t0=$SECONDS
  # --locked: use the crate's own lockfile so the build does not drift.
  cargo install "s3s-fs@$S3S_VERSION" --features binary --locked --root "$S3S_ROOT" ||
    die "s3: cargo install s3s-fs@$S3S_VERSION failed"
  log "s3: built $S3S_BIN ($((SECONDS - t0)) s)"
}

s3_ready() {
  # Any HTTP status (403 for an unsigned request) means the server is answering.
  local code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$HOST:$S3_PORT/" || true)"
  [[ -n $code && $code != 000 ]]
}

start_s3() {
  if s3_running; then
    log "s3: already running (pid $(<"$S3_PID"))"
    return 0
  fi
  rm -f "$S3_PID"
  mkdir -p "$S3_DIR/data"
  log "s3: starting s3s-fs $S3S_VERSION on http://$HOST:$S3_PORT"
  launch "$S3_PID" "$S3_LOG" "$S3_DIR" \
    "$S3S_BIN" --host "$HOST" --port "$S3_PORT" \
    --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$S3_DIR/data"
}

wait_s3() {
  local t0=$SECONDS
  until s3_ready; do
    if ! s3_running; then
      show_tail "$S3_LOG"
      die "s3: process exited during startup"
    fi
    if ((SECONDS - t0 >= READY_TIMEOUT)); then
      show_tail "$S3_LOG"
      die "s3: not answering after $READY_TIMEOUT s"
    fi
    sleep 0.5
  done
  log "s3: ready ($((SECONDS - t0)) s)"
}

# ---------------------------------------------------------------- Glue (moto)

install_glue() {
  [[ -f $MOTO_ROOT/.complete ]] && return 0
  need python3
  log "glue: installing moto[server]==$MOTO_VERSION from PyPI into $MOTO_ROOT"
  local t0=$SECONDS
  rm -rf "$MOTO_ROOT"
  python3 -m venv "$MOTO_ROOT" ||
    die "glue: python3 -m venv failed (Debian/Ubuntu: apt-get install python3-venv)"
  "$MOTO_ROOT/bin/python" -m pip install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" ||
    die "glue: pip install moto[server]==$MOTO_VERSION failed (try another SLUICE_MOTO_VERSION)"
  [[ -x $MOTO_BIN ]] || die "glue: moto $MOTO_VERSION installed no $MOTO_BIN"
  touch "$MOTO_ROOT/.complete"
  log "glue: installed moto $MOTO_VERSION ($((SECONDS - t0)) s)"
}

glue_ready() {
  # Any HTTP status means the server is answering.
  local code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$HOST:$GLUE_PORT/" || true)"
  [[ -n $code && $code != 000 ]]
}

start_glue() {
  if glue_running; then
    log "glue: already running (pid $(<"$GLUE_PID"))"
    return 0
  fi
  rm -f "$GLUE_PID"
  mkdir -p "$GLUE_DIR"
  log "glue: starting moto $MOTO_VERSION on http://$HOST:$GLUE_PORT"
  launch "$GLUE_PID" "$GLUE_LOG" "$GLUE_DIR" \
    "$MOTO_BIN" -H "$HOST" -p "$GLUE_PORT"
}

wait_glue() {
  local t0=$SECONDS
  until glue_ready; do
    if ! glue_running; then
      show_tail "$GLUE_LOG"
      die "glue: process exited during startup"
    fi
    if ((SECONDS - t0 >= READY_TIMEOUT)); then
      show_tail "$GLUE_LOG"
      die "glue: not answering after $READY_TIMEOUT s"
    fi
    sleep 0.5
  done
  log "glue: ready ($((SECONDS - t0)) s)"
}

# ---------------------------------------------------------------- commands

write_env() {
  cat >"$SVC/env.tmp" <<EOF
export KAFKA_BOOTSTRAP=$HOST:$KAFKA_PORT
export S3_ENDPOINT=http://$HOST:$S3_PORT
export GLUE_ENDPOINT=http://$HOST:$GLUE_PORT
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_REGION=$S3_REGION
EOF
  if [[ -f $CONNECT_LIBS/.complete ]]; then
    echo "export KAFKA_CONNECT_LIBS=$CONNECT_LIBS" >>"$SVC/env.tmp"
  fi
  if [[ -n $KAFKA_SASL_PORT ]]; then
    echo "export KAFKA_SASL_BOOTSTRAP=$HOST:$KAFKA_SASL_PORT" >>"$SVC/env.tmp"
  fi
  if [[ -n $KAFKA_SSL_PORT ]]; then
    echo "export KAFKA_SSL_BOOTSTRAP=$HOST:$KAFKA_SSL_PORT" >>"$SVC/env.tmp"
  fi
  mv "$SVC/env.tmp" "$SVC/env"
}

# Checked before starting anything, so a busy port does not leave a half-started set.
check_ports_free() {
  local p busy=()
  if ((WANT_KAFKA)) && ! kafka_running; then
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" $KAFKA_SASL_PORT $KAFKA_SSL_PORT; do
      if port_open "$p"; then busy+=("$p"); fi
    done
  fi
  if ((WANT_S3)) && ! s3_running; then
    if port_open "$S3_PORT"; then busy+=("$S3_PORT"); fi
  fi
  if ((WANT_GLUE)) && ! glue_running; then
    if port_open "$GLUE_PORT"; then busy+=("$GLUE_PORT"); fi
  fi
  ((${#busy[@]} == 0)) ||
    die "port(s) ${busy[*]} in use by a process this script did not start (another clone's services? see 'ss -ltnp')"
}

# Which services a command applies to: all three by default, or the one named.
pick_services() { # [kafka|s3|glue]
  case "${1:-}" in
    '') WANT_KAFKA=1 WANT_S3=1 WANT_GLUE=1 ;;
    kafka) WANT_KAFKA=1 WANT_S3=0 WANT_GLUE=0 ;;
    s3) WANT_KAFKA=0 WANT_S3=1 WANT_GLUE=0 ;;
    glue) WANT_KAFKA=0 WANT_S3=0 WANT_GLUE=1 ;;
    *) return 1 ;;
  esac
}

cmd_up() {
  pick_services "$@" || die "usage: $0 up [kafka|s3|glue]"
  need curl setsid flock
  ((WANT_KAFKA)) && need java
  ((WANT_KAFKA)) && check_kafka_security
  ((WANT_KAFKA)) && install_kafka
  ((WANT_KAFKA)) && install_connect
  ((WANT_S3)) && install_s3
  ((WANT_GLUE)) && install_glue
  check_ports_free
  # Start all before waiting, so the startups overlap.
  ((WANT_KAFKA)) && start_kafka
  ((WANT_S3)) && start_s3
  ((WANT_GLUE)) && start_glue
  ((WANT_S3)) && wait_s3
  ((WANT_GLUE)) && wait_glue
  ((WANT_KAFKA)) && wait_kafka
  write_env
  cat <<EOF
Kafka  bootstrap  $HOST:$KAFKA_PORT   (logs: ${KAFKA_LOG#"$ROOT"/})${KAFKA_SASL_PORT:+
Kafka  sasl       $HOST:$KAFKA_SASL_PORT   (SASL_PLAINTEXT, SCRAM-SHA-512)}${KAFKA_SSL_PORT:+
Kafka  ssl        $HOST:$KAFKA_SSL_PORT   (SSL)}
S3     endpoint   http://$HOST:$S3_PORT   region $S3_REGION, access key $S3_ACCESS_KEY  (log: ${S3_LOG#"$ROOT"/})
Glue   endpoint   http://$HOST:$GLUE_PORT   moto $MOTO_VERSION, in memory, any credentials  (log: ${GLUE_LOG#"$ROOT"/})
Env for tests:    source ${SVC#"$ROOT"/}/env
EOF
}

cmd_down() {
  local purge=0 which=''
  while (($#)); do
    case "$1" in
      --purge) purge=1 ;;
      kafka | s3 | glue) which=$1 ;;
      *) die "usage: $0 down [kafka|s3|glue] [--purge]" ;;
    esac
    shift
  done
  pick_services "$which"
  ((WANT_KAFKA)) && stop_pid "$KAFKA_PID" 'kafka.Kafka' kafka
  ((WANT_S3)) && stop_pid "$S3_PID" 's3s-fs' s3
  ((WANT_GLUE)) && stop_pid "$GLUE_PID" 'moto_server' glue
  if ((purge)); then
    log "purging ${which:-Kafka, S3 and Glue} data (cache kept)"
    ((WANT_KAFKA)) && rm -rf "$KAFKA_DIR/data"
    ((WANT_S3)) && rm -rf "$S3_DIR/data"
    # moto keeps its catalog in memory; only its log is on disk.
    ((WANT_GLUE)) && rm -rf "$GLUE_DIR"
    [[ -n $which ]] || rm -f "$SVC/env"
  fi
  return 0
}

cmd_status() {
  local rc=0
  if kafka_running; then
    echo "kafka: running (pid $(<"$KAFKA_PID"), $HOST:$KAFKA_PORT)"
  else
    echo "kafka: stopped"
    rc=3
  fi
  if s3_running; then
    echo "s3:    running (pid $(<"$S3_PID"), http://$HOST:$S3_PORT)"
  else
    echo "s3:    stopped"
    rc=3
  fi
  if glue_running; then
    echo "glue:  running (pid $(<"$GLUE_PID"), http://$HOST:$GLUE_PORT)"
  else
    echo "glue:  stopped"
    rc=3
  fi
  return "$rc"
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  mkdir -p "$SVC" "$CACHE"
  case "$cmd" in
    up | down)
      # Serialise concurrent up/down calls (e.g. parallel test jobs).
      exec 9>"$SVC/.lock"
      flock 9
      "cmd_$cmd" "$@"
      ;;
    status) cmd_status ;;
    kafka-cli)
      [[ -f $KAFKA_LIBS/.complete ]] || die "Kafka is not installed yet; run '$0 up' first"
      [[ -f $KAFKA_DIR/config/tools-log4j2.xml ]] || write_kafka_config
      kafka_cli "$@"
      ;;
    *)
      sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
