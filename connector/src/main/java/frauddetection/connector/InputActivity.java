package frauddetection.connector;

import java.util.ArrayList;
import java.util.List;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The idleness of every partition one source subtask reads, so that a partition is judged idle
 * against the whole input and not on its own.
 *
 * <p>Flink leaves an idle partition out of the watermark, and the watermark never goes back. When
 * the whole input has been quiet and traffic resumes (a gateway flushing its retry queue, a
 * connector restarting, a night's quiet ending), the first partition to deliver a record would
 * set the watermark alone, and the records of the others, arriving a few milliseconds later,
 * would be late. So when a record arrives while every partition is idle, every partition counts
 * as active again, holding the watermark at its last value, until it has itself been quiet for
 * the idle timeout once more.
 *
 * <p>One instance per source subtask (its {@link ResumingIdleness} strategy is deserialized per
 * subtask); every method runs on the subtask's task thread.
 */
final class InputActivity {

    private static final Logger LOG = LoggerFactory.getLogger(InputActivity.class);

    private final List<ResumingIdleGenerator<?>> outputs = new ArrayList<>();
    private int idleOutputs;

    void register(ResumingIdleGenerator<?> output) {
        outputs.add(output);
    }

    void wentIdle() {
        idleOutputs++;
    }

    void wentActive() {
        idleOutputs--;
    }

    boolean wholeInputIdle() {
        return !outputs.isEmpty() && idleOutputs == outputs.size();
    }

    /**
     * A record arrived for {@code woken} while it was idle: when the whole input was idle, every
     * other partition counts as active again too, before {@code woken} itself (whose activation
     * recomputes the combined watermark), so the watermark cannot run ahead of a partition whose
     * records are still on their way.
     */
    void resumed(ResumingIdleGenerator<?> woken, Runnable activateWoken) {
        if (wholeInputIdle()) {
            int others = 0;
            for (ResumingIdleGenerator<?> output : outputs) {
                if (output != woken && output.reactivate()) {
                    others++;
                }
            }
            LOG.info(
                    "input resumed after every partition was idle: {} other output(s) count as"
                            + " active again until each is idle once more",
                    others);
        }
        activateWoken.run();
    }
}
