/*
 * Runs Apache Kafka Connect's own single-message transforms on schemaless
 * records, for the behaviour-parity test tests/transforms_compat.rs.
 *
 * Input (stdin): a JSON array of cases
 *   {"name": "...",
 *    "transforms": [{"class": "org.apache.kafka.connect.transforms.Cast$Value",
 *                    "config": {"spec": "a:int32"},
 *                    "predicate": {"class": "...predicates.TopicNameMatches",
 *                                  "config": {"pattern": "t.*"}},   // optional
 *                    "negate": false}],                           // optional
 *    "record": {"topic": "t", "partition": 0, "key": <json>, "value": <json>,
 *               "headers": [["name", "value or null"], ...], "timestamp": 1622160000000}}
 *
 * Output (stdout): one JSON line per case, in input order:
 *   {"name": ..., "key": ..., "value": ..., "topic": ..., "headers": [[name, value], ...],
 *    "dropped": bool, "error": "message" | null}
 *
 * Key and value enter as Kafka Connect's JsonConverter (schemas.enable=false)
 * gives them to a sink connector's transforms: objects as Maps, arrays as
 * Lists, integers as Long, decimals as Double. Header values enter as string
 * headers. The steps run as TransformationStage does: a step applies when
 * `negate ^ predicate.test(record)`, and a null result drops the record.
 * Key and value leave as JSON (java.util.Date as epoch milliseconds, byte[]
 * as base64), header values as the default SimpleHeaderConverter writes them.
 * The JVM's default locale and time zone are pinned (en-US, UTC), so that the
 * results do not depend on the machine.
 */

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.header.ConnectHeaders;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.storage.SimpleHeaderConverter;
import org.apache.kafka.connect.transforms.Transformation;
import org.apache.kafka.connect.transforms.predicates.Predicate;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TimeZone;

public class Driver {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** One step: a transform and its optional predicate. */
    private static final class Step {
        Transformation<SinkRecord> transform;
        Predicate<SinkRecord> predicate;
        boolean negate;
    }

    public static void main(String[] args) throws Exception {
        Locale.setDefault(Locale.US);
        TimeZone.setDefault(TimeZone.getTimeZone("UTC"));
        JsonNode cases = MAPPER.readTree(System.in);
        if (cases == null || !cases.isArray()) {
            throw new IllegalArgumentException("stdin must hold a JSON array of cases");
        }

        JsonConverter converter = new JsonConverter();
        Map<String, Object> converterConfig = new HashMap<>();
        converterConfig.put("schemas.enable", "false");
        converter.configure(converterConfig, false);

        SimpleHeaderConverter headerConverter = new SimpleHeaderConverter();
        headerConverter.configure(new HashMap<>());

        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        for (JsonNode c : cases) {
            ObjectNode result = runCase(c, converter, headerConverter);
            out.println(MAPPER.writeValueAsString(result));
        }
        out.flush();
    }

    private static ObjectNode runCase(JsonNode c, JsonConverter converter, SimpleHeaderConverter headerConverter) {
        ObjectNode result = MAPPER.createObjectNode();
        result.put("name", c.path("name").asText());

        List<Step> steps = new ArrayList<>();
        try {
            for (JsonNode s : c.path("transforms")) {
                Step step = new Step();
                step.transform = instantiate(s.path("class").asText(), stringMap(s.path("config")));
                JsonNode p = s.path("predicate");
                if (p.isObject()) {
                    step.predicate = instantiatePredicate(p.path("class").asText(), stringMap(p.path("config")));
                }
                step.negate = s.path("negate").asBoolean(false);
                steps.add(step);
            }
        } catch (Throwable e) {
            return failed(result, "config: " + describe(e));
        }

        SinkRecord record;
        try {
            record = buildRecord(c.path("record"), converter);
        } catch (Throwable e) {
            return failed(result, "harness: cannot build the record: " + describe(e));
        }

        try {
            for (Step step : steps) {
                if (step.predicate == null || step.negate ^ step.predicate.test(record)) {
                    record = step.transform.apply(record);
                    if (record == null) {
                        break;
                    }
                }
            }
        } catch (Throwable e) {
            return failed(result, describe(e));
        } finally {
            for (Step step : steps) {
                closeQuietly(step.transform);
                closeQuietly(step.predicate);
            }
        }

        if (record == null) {
            result.putNull("key");
            result.putNull("value");
            result.putNull("topic");
            result.putArray("headers");
            result.put("dropped", true);
            result.putNull("error");
            return result;
        }
        try {
            result.set("key", toJson(record.key()));
            result.set("value", toJson(record.value()));
            result.put("topic", record.topic());
            ArrayNode headers = result.putArray("headers");
            for (Header h : record.headers()) {
                ArrayNode pair = headers.addArray();
                pair.add(h.key());
                byte[] bytes = headerConverter.fromConnectHeader(record.topic(), h.key(), h.schema(), h.value());
                if (bytes == null) {
                    pair.addNull();
                } else {
                    pair.add(new String(bytes, StandardCharsets.UTF_8));
                }
            }
            result.put("dropped", false);
            result.putNull("error");
        } catch (Throwable e) {
            return failed(result, "harness: cannot convert the result: " + describe(e));
        }
        return result;
    }

    private static SinkRecord buildRecord(JsonNode r, JsonConverter converter) throws Exception {
        String topic = r.path("topic").asText("t");
        int partition = r.path("partition").asInt(0);
        SchemaAndValue key = toConnect(converter, topic, r.path("key"));
        SchemaAndValue value = toConnect(converter, topic, r.path("value"));
        ConnectHeaders headers = new ConnectHeaders();
        for (JsonNode h : r.path("headers")) {
            String name = h.path(0).asText();
            JsonNode v = h.path(1);
            headers.addString(name, v.isNull() || v.isMissingNode() ? null : v.asText());
        }
        JsonNode ts = r.path("timestamp");
        Long timestamp = ts.isNumber() ? ts.asLong() : null;
        return new SinkRecord(topic, partition, key.schema(), key.value(), value.schema(), value.value(),
                0L, timestamp, timestamp == null ? TimestampType.NO_TIMESTAMP_TYPE : TimestampType.CREATE_TIME,
                headers);
    }

    /** As a sink connector with JsonConverter (schemas.enable=false) would hand it to transforms. */
    private static SchemaAndValue toConnect(JsonConverter converter, String topic, JsonNode json) throws Exception {
        if (json == null || json.isMissingNode() || json.isNull()) {
            return SchemaAndValue.NULL;
        }
        return converter.toConnectData(topic, MAPPER.writeValueAsBytes(json));
    }

    /** Maps, Lists, numbers, strings, booleans; Date as epoch millis, byte[] as base64. */
    private static JsonNode toJson(Object value) {
        if (value == null) {
            return NullNode.getInstance();
        }
        return MAPPER.valueToTree(value);
    }

    private static Map<String, String> stringMap(JsonNode node) {
        Map<String, String> map = new HashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            map.put(e.getKey(), e.getValue().isNull() ? null : e.getValue().asText());
        }
        return map;
    }

    @SuppressWarnings("unchecked")
    private static Transformation<SinkRecord> instantiate(String className, Map<String, String> config) throws Exception {
        Transformation<SinkRecord> t = (Transformation<SinkRecord>) Class.forName(className)
                .getDeclaredConstructor().newInstance();
        t.configure(config);
        return t;
    }

    @SuppressWarnings("unchecked")
    private static Predicate<SinkRecord> instantiatePredicate(String className, Map<String, String> config) throws Exception {
        Predicate<SinkRecord> p = (Predicate<SinkRecord>) Class.forName(className)
                .getDeclaredConstructor().newInstance();
        p.configure(config);
        return p;
    }

    private static ObjectNode failed(ObjectNode result, String error) {
        result.putNull("key");
        result.putNull("value");
        result.putNull("topic");
        result.putArray("headers");
        result.put("dropped", false);
        result.put("error", error);
        return result;
    }

    private static String describe(Throwable e) {
        String message = e.getClass().getSimpleName() + ": " + e.getMessage();
        if (e.getCause() != null && e.getCause() != e) {
            message += " (caused by " + e.getCause().getClass().getSimpleName() + ": " + e.getCause().getMessage() + ")";
        }
        return message;
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (Exception ignored) {
            // nothing to do
        }
    }
}
