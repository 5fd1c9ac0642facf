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
 *   <li>"The others had traffic" means more than time: the Kafka consumer hands a fetch over one
 *       partition at a time, and a fetch holds at least one whole producer batch (up to 1 MB,
 *       thousands of records), so a partition can wait longer than the timeout behind the
 *       others' batches of one fetch while the pipeline works them off. It is idle only once
 *       another partition has taken {@link #TURNS_PROVING_A_NEW_FETCH} more turns since its own
 *       last record (each turn a run of that partition's records after another's: a later
 *       fetch, which would have carried the quiet partition's records too), or, when a single
 *       partition has traffic and takes no turns, after {@link #SINGLE_FLOW_TIMEOUTS} timeouts.
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

    /** Turns another output must take after a quiet output's last record to prove it empty. */
    static final int TURNS_PROVING_A_NEW_FETCH = 2;

    /** Timeouts of traffic that prove a quiet output empty when no other output takes turns. */
    static final int SINGLE_FLOW_TIMEOUTS = 6;

    private final List<ResumingIdleGenerator<?>> outputs = new ArrayList<>();
    /** The output of the last record, and how many times the emitting output changed. */
    private ResumingIdleGenerator<?> current;

    private long turns;
    /** Records of every partition so far. */
    private long records;
    /** When the last record of any partition arrived (relative nanos), or -1 before the first. */
    private long lastRecordNanos = -1;

    /** Registers `output`; returns its number, in the order Flink created the outputs. */
    int register(ResumingIdleGenerator<?> output) {
        outputs.add(output);
        return outputs.size() - 1;
    }

    /** Logs that `output` is idle now, with what decided it (once per idle spell). */
    void idle(int output, long quietNanos, long othersFlowedNanos, int turns) {
        LOG.info(
                "output {} of {} idle: quiet {} ms while the others had traffic for {} ms and took {} turn(s)",
                output,
                outputs.size(),
                quietNanos / 1_000_000,
                othersFlowedNanos / 1_000_000,
                turns);
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
        if (output != current) {
            turns++;
            current = output;
            long previous = output.lastTurn();
            if (previous >= 0) {
                // another turn of `output`: it proves a new fetch to every output that was
                // last seen before its previous turn
                for (ResumingIdleGenerator<?> other : outputs) {
                    if (other != output && other.lastTurn() < previous) {
                        other.anotherTookATurn();
                    }
                }
            }
            output.tookTurn(turns);
        }
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
