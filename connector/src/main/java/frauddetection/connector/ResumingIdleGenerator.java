package frauddetection.connector;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.util.clock.RelativeClock;

/**
 * The watermark generator of one partition (or of the source's main output): the table's own
 * generator for the watermark, and idleness decided here, with the rest of the subtask's input
 * ({@link InputActivity}).
 *
 * <p>Idle means no record for the idle timeout, measured on Flink's input activity clock, which
 * stands still while the subtask is back-pressured or the split is paused, and counted only in
 * steps of at most {@link #MAX_CHECK_GAP_NANOS} between two periodic checks: the checks run on the
 * subtask's thread, so a long gap between two of them means the thread was busy elsewhere (in a
 * chained operator, such as a Python UDF finishing a bundle) and the source could not have read
 * the partition meanwhile. So a partition whose records wait behind a busy pipeline is not idle.
 * Idleness the wrapped generator declares itself (Flink's {@code table.exec.source.idle-timeout}
 * wraps it in its own) is ignored: this class is the only one that marks the output idle or
 * active.
 */
final class ResumingIdleGenerator<T> implements WatermarkGenerator<T> {

    /**
     * The most quiet time one periodic check adds. Flink checks every {@code
     * pipeline.auto-watermark-interval} (200 ms by default) while the subtask's thread is free.
     */
    static final long MAX_CHECK_GAP_NANOS = 1_000_000_000L;

    private final WatermarkGenerator<T> watermarks;
    private final InputActivity input;
    private final RelativeClock clock;
    private final long timeoutNanos;

    /** Records seen so far; compared at each periodic check, as Flink's own idleness timer does. */
    private long records;

    private long recordsAtLastCheck;
    /** Quiet time so far: checks that found no new record, each counted up to the cap. */
    private long quietNanos;
    /** When the last periodic check ran (relative nanos), or -1 before the first. */
    private long lastCheck = -1;

    private boolean idle;
    /** The deferred output of the periodic emits, remembered to reactivate this output. */
    private WatermarkOutput periodicOutput;

    private final WatermarksOnly eventWatermarks = new WatermarksOnly();
    private final WatermarksOnly periodicWatermarks = new WatermarksOnly();

    ResumingIdleGenerator(
            WatermarkGenerator<T> watermarks,
            InputActivity input,
            RelativeClock clock,
            long timeoutNanos) {
        this.watermarks = watermarks;
        this.input = input;
        this.clock = clock;
        this.timeoutNanos = timeoutNanos;
        input.register(this);
    }

    @Override
    public void onEvent(T event, long eventTimestamp, WatermarkOutput output) {
        records++;
        if (idle) {
            input.resumed(this, () -> activate(output));
        }
        watermarks.onEvent(event, eventTimestamp, eventWatermarks.to(output));
    }

    @Override
    public void onPeriodicEmit(WatermarkOutput output) {
        periodicOutput = output;
        if (idle) {
            return;
        }
        if (quietForTimeout()) {
            idle = true;
            input.wentIdle();
            output.markIdle();
            return;
        }
        watermarks.onPeriodicEmit(periodicWatermarks.to(output));
    }

    /**
     * Counts as active again because the whole input resumed; returns whether it was idle. Its
     * watermark stays what it was, so it holds the combined watermark back until it advances or
     * the output is idle once more.
     */
    boolean reactivate() {
        if (!idle || periodicOutput == null) {
            return false;
        }
        activate(periodicOutput);
        return true;
    }

    boolean isIdle() {
        return idle;
    }

    private void activate(WatermarkOutput output) {
        idle = false;
        input.wentActive();
        recordsAtLastCheck = records;
        quietNanos = 0;
        lastCheck = clock.relativeTimeNanos();
        output.markActive();
    }

    private boolean quietForTimeout() {
        if (timeoutNanos <= 0) {
            return false;
        }
        long now = clock.relativeTimeNanos();
        long sinceLastCheck = lastCheck < 0 ? 0 : now - lastCheck;
        lastCheck = now;
        if (records != recordsAtLastCheck) {
            recordsAtLastCheck = records;
            quietNanos = 0;
            return false;
        }
        quietNanos += Math.min(sinceLastCheck, MAX_CHECK_GAP_NANOS);
        return quietNanos > timeoutNanos;
    }

    /**
     * Passes the wrapped generator's watermarks on and swallows its own idleness. One per kind of
     * output, pointed at the output of each call (Flink passes the same one every time): no
     * allocation per record.
     */
    private static final class WatermarksOnly implements WatermarkOutput {
        private WatermarkOutput output;

        WatermarksOnly to(WatermarkOutput target) {
            output = target;
            return this;
        }

        @Override
        public void emitWatermark(Watermark watermark) {
            output.emitWatermark(watermark);
        }

        @Override
        public void markIdle() {}

        @Override
        public void markActive() {}
    }
}
