# shellcheck shell=bash
# Apache Kafka part of the local stack: a single KRaft node (broker + controller) run straight
# from the jars that Maven fetches from Maven Central (no distribution tarball download).
# Sourced by dev/stack.sh.

# The one place the Kafka version is pinned.
KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}

KAFKA_DIR=$STACK_DIR/kafka
KAFKA_LIB=$KAFKA_DIR/lib-$KAFKA_VERSION
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_TOPICS=(exports.requested exports.events exports.deadletter)
KAFKA_PARTITIONS=12
KAFKA_TIMEOUT=${STACK_KAFKA_TIMEOUT:-120}
KAFKA_HEAP=${KAFKA_HEAP:--Xms256m -Xmx768m}

kafka_pom() { echo "$EXPORTPLATFORM_ROOT/dev/kafka/pom.xml"; }

# kafka_fetch: the jars, once. The marker holds the version and a hash of the pom, so a
# change of dependencies fetches again; a fetch cut short leaves no marker.
kafka_fetch() {
  local marker=$KAFKA_LIB/.complete want
  want="$KAFKA_VERSION $(sha256sum "$(kafka_pom)" | cut -c1-16)"
  [[ -f $marker && $(<"$marker") == "$want" ]] && return 0
  need_cmd java openjdk-17-jre-headless
  need_cmd mvn maven
  log "kafka: fetching Kafka $KAFKA_VERSION jars with Maven (first run only)"
  local tmp=$KAFKA_LIB.partial
  rm -rf "$tmp"
  mvn -B -q -ntp -f "$(kafka_pom)" \
    -Dkafka.version="$KAFKA_VERSION" \
    -Dmaven.repo.local="$STACK_DIR/m2" \
    dependency:copy-dependencies -DoutputDirectory="$tmp" \
    >>"$(log_file maven)" 2>&1 </dev/null 9>&- || {
    show_log_tail maven
    die "kafka: Maven could not fetch the Kafka jars"
  }
  ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || die "kafka: kafka_2.13-$KAFKA_VERSION.jar missing after fetch"
  rm -rf "$KAFKA_LIB"
  mv "$tmp" "$KAFKA_LIB"
  echo "$want" >"$marker"
}

# kafka_render_config: server.properties and log4j2.properties from dev/kafka/*.in.
kafka_render_config() {
  local src=$EXPORTPLATFORM_ROOT/dev/kafka
  mkdir -p "$KAFKA_DATA"
  sed -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
    -e "s|@BROKER_PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    "$src/server.properties.in" >"$KAFKA_DIR/server.properties"
  cp "$src/log4j2.properties.in" "$KAFKA_DIR/log4j2.properties"
}

# kafka_jvm: the java command line shared by the broker and the storage tool, in KAFKA_JVM.
kafka_jvm() {
  # shellcheck disable=SC2206 # KAFKA_HEAP is a list of JVM flags, split on purpose
  KAFKA_JVM=(java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" -Dlog4j2.shutdownHookEnabled=false
    -Dkafka.logs.dir="$STACK_DIR/logs"
    -cp "$KAFKA_LIB/*")
}

# kafka_format: KRaft storage is formatted once, with a cluster id generated once.
kafka_format() {
  [[ -f $KAFKA_DATA/meta.properties ]] && return 0
  local idfile=$KAFKA_DIR/cluster.id cid
  if [[ ! -s $idfile ]]; then
    # A Kafka cluster id is a UUID in URL-safe base64 without padding (22 chars); Kafka's own
    # generator never starts one with '-', so neither do we.
    cid=-
    while [[ $cid == -* ]]; do
      cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    echo "$cid" >"$idfile"
  fi
  cid=$(<"$idfile")
  log "kafka: formatting storage (cluster id $cid)"
  kafka_jvm
  "${KAFKA_JVM[@]}" kafka.tools.StorageTool format --ignore-formatted -t "$cid" \
    -c "$KAFKA_DIR/server.properties" >>"$(log_file kafka)" 2>&1 </dev/null 9>&- || {
    show_log_tail kafka
    die "kafka: storage format failed"
  }
}

kafka_pid() { running_pid kafka "$KAFKA_DIR/server.properties"; }

# kafka_topics: readiness (the tool waits until the broker answers metadata) and topics.
kafka_topics() {
  "$STACK_DIR/bin/topics" -brokers "127.0.0.1:$KAFKA_PORT" -partitions "$KAFKA_PARTITIONS" \
    -wait "${1:-60}s" "${KAFKA_TOPICS[@]}" >>"$(log_file kafka-topics)" 2>&1
}

kafka_start() {
  local pid t0
  if pid=$(kafka_pid); then
    if ! kafka_topics 30; then
      show_log_tail kafka-topics 10
      show_log_tail kafka
      die "kafka (pid $pid) is running but not answering"
    fi
    log "kafka: already running (pid $pid)"
    return 0
  fi
  need_cmd java openjdk-17-jre-headless
  kafka_fetch
  require_port_free kafka 127.0.0.1 "$KAFKA_PORT"
  require_port_free kafka-controller 127.0.0.1 "$KAFKA_CONTROLLER_PORT"
  kafka_render_config
  kafka_format
  t0=$(now_ms)
  kafka_jvm
  pid=$(spawn kafka "${KAFKA_JVM[@]}" kafka.Kafka "$KAFKA_DIR/server.properties")
  # Wait for the listener first (cheap, and notices a crashed JVM at once), then for the
  # broker to answer metadata while the topics are created.
  if ! wait_until kafka "$KAFKA_TIMEOUT" "$pid" port_open 127.0.0.1 "$KAFKA_PORT" ||
    ! kafka_topics 60; then
    show_log_tail kafka-topics 10
    show_log_tail kafka
    die "kafka: failed to start"
  fi
  log "kafka: started (pid $pid, 127.0.0.1:$KAFKA_PORT) in $(fmt_ms "$(since_ms "$t0")"); topics: ${KAFKA_TOPICS[*]}"
}

kafka_stop() {
  local pid
  if pid=$(kafka_pid); then
    # SIGTERM makes the broker shut down cleanly (flushes, closes the log segments).
    stop_pid kafka "$KAFKA_DIR/server.properties" 60 TERM
    log "kafka: stopped (pid $pid)"
  fi
}

kafka_status() {
  local pid ready=no
  if pid=$(kafka_pid); then
    port_open 127.0.0.1 "$KAFKA_PORT" && ready=yes
    status_line kafka running "$pid" "$ready" "127.0.0.1:$KAFKA_PORT"
  else
    status_line kafka stopped - - "127.0.0.1:$KAFKA_PORT"
  fi
}
