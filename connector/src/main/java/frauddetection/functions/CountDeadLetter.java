package frauddetection.functions;

import java.util.HashMap;
import java.util.Map;

import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code count_dead_letter(reason)}: the reason unchanged, each dead letter counted by its
 * reason in the Flink metric {@code dead_letters} of the operator's group {@code reason=<reason>}
 * (Prometheus: {@code flink_taskmanager_job_task_operator_reason_dead_letters{reason="..."}}).
 *
 * <p>The job's dead-letter views (sql_templates/validation/dead_letters.sql.j2 and
 * enrichment/on_time_transactions.sql.j2) pass their reason through it. The reasons are the
 * contract's (docs/contract.md, "Invalid records"), a bounded set: one counter each. Java, not
 * Python, so that counting adds no Python operator to the dead-letter paths.
 */
public final class CountDeadLetter extends ScalarFunction {

    private transient ReasonCounters counters;

    @Override
    public void open(FunctionContext context) {
        counters = new ReasonCounters(context.getMetricGroup());
    }

    public String eval(String reason) {
        counters.count(reason);
        return reason;
    }

    /** Not deterministic: a literal reason ('late_event') must be counted per row, not folded. */
    @Override
    public boolean isDeterministic() {
        return false;
    }

    /** One counter per reason, registered the first time the reason is seen. */
    static final class ReasonCounters {
        private final MetricGroup group;
        private final Map<String, Counter> byReason = new HashMap<>();

        ReasonCounters(MetricGroup group) {
            this.group = group;
        }

        void count(String reason) {
            String key = reason == null ? "unknown" : reason;
            byReason.computeIfAbsent(key, r -> group.addGroup("reason", r).counter("dead_letters"))
                    .inc();
        }
    }
}
