package frauddetection.functions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.HashMap;
import java.util.Map;

import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.SimpleCounter;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.junit.jupiter.api.Test;

class CountDeadLetterTest {

    /** A metric group that keeps its counters by their path ("reason.bad_amount.dead_letters"). */
    static final class Recording extends UnregisteredMetricsGroup {
        final Map<String, Counter> counters;
        final String path;

        Recording(Map<String, Counter> counters, String path) {
            this.counters = counters;
            this.path = path;
        }

        @Override
        public MetricGroup addGroup(String key, String value) {
            return new Recording(counters, path + key + "." + value + ".");
        }

        @Override
        public Counter counter(String name) {
            Counter counter = new SimpleCounter();
            counters.put(path + name, counter);
            return counter;
        }
    }

    @Test
    void eachReasonIsCountedInItsOwnLabelledCounter() {
        Map<String, Counter> counters = new HashMap<>();
        CountDeadLetter.ReasonCounters byReason =
                new CountDeadLetter.ReasonCounters(new Recording(counters, ""));
        for (String reason : new String[] {"bad_amount", "late_event", "bad_amount", null}) {
            byReason.count(reason);
        }
        assertEquals(3, counters.size());
        assertEquals(2, counters.get("reason.bad_amount.dead_letters").getCount());
        assertEquals(1, counters.get("reason.late_event.dead_letters").getCount());
        assertEquals(1, counters.get("reason.unknown.dead_letters").getCount());
    }

    @Test
    void theReasonPassesThroughAndIsNeverFoldedAway() {
        assertFalse(new CountDeadLetter().isDeterministic());
    }
}
