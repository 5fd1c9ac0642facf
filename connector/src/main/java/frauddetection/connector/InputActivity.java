package frauddetection.connector;

import java.util.ArrayList;
import java.util.List;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The traffic of every partition one source subtask reads, so that a partition's idleness is
 * judged against the whole input and not on its own.
 *
 * <p>Flink leaves an idle partition out of the watermark and never moves the watermark back;
 * when every partition is idle it even moves it to the furthest partition's. So a partition
 * marked idle while it still had records on their way loses them all as late. Three rules
 * keep that from happening ({@link ResumingIdleGenerator} applies them):
 *
 * <ul>
 *   <li>A partition is idle only when it has been quiet while the others had traffic, for the
 *       idle timeout: a partition that gets nothing while the others do (the one case idleness
 *       is for). When the whole input stalls (a backlog's source waiting behind a busy
 *       pipeline, a broker away) or goes quiet, no partition is idle: they all hold the
 *       watermark where it was, and none can be overtaken.
 *   <li>So the input is never all idle, and Flink never moves the watermark to the furthest
 *       partition.
 *   <li>When traffic resumes after the whole input was quiet for the idle timeout (a gateway
 *       flushing its retry queue, a connector restarting), every idle partition counts as
 *       active again, at its old watermark, until it is idle once more by the first rule: the
 *       first partition to deliver a record does not set the watermark alone.
 * </ul>
 *
 * <p>One instance per source subtask (its {@link ResumingIdleness} strategy is deserialized per
 * subtask); every method runs on the subtask's task thread.
 */
final class InputActivity {

    private static final Logger LOG = LoggerFactory.getLogger(InputActivity.class);

    private final List<ResumingIdleGenerator<?>> outputs = new ArrayList<>();
    /** Records of every partition so far. */
    private long records;
    /** When the last record of any partition arrived (relative nanos), or -1 before the first. */
    private long lastRecordNanos = -1;

    void register(ResumingIdleGenerator<?> output) {
        outputs.add(output);
    }

    long records() {
        return records;
    }

    /**
     * A record arrived at `nowNanos`; when the whole input had been quiet for `timeoutNanos`,
     * every idle output counts as active again (the record's own output is reactivated by its
     * generator after this).
     */
    void recordArrived(ResumingIdleGenerator<?> output, long nowNanos, long timeoutNanos) {
        boolean resumed = timeoutNanos > 0 && nowNanos - lastRecordNanos > timeoutNanos;
        records++;
        lastRecordNanos = nowNanos;
        if (!resumed) {
            return;
        }
        int reactivated = 0;
        for (ResumingIdleGenerator<?> other : outputs) {
            if (other != output && other.reactivate()) {
                reactivated++;
            }
        }
        if (reactivated > 0) {
            LOG.info(
                    "input resumed after a quiet spell: {} idle output(s) count as active again",
                    reactivated);
        }
    }
}
