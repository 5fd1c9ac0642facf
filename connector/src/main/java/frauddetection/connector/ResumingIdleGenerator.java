package frauddetection.connector;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.util.clock.RelativeClock;

/**
 * The watermark generator of one partition (or of the source's main output): the table's own
 * generator for the watermark, and idleness decided here with the rest of the subtask's input
 * ({@link InputActivity} states the rules).
 *
 * <p>Time is Flink's input activity clock, which stands still while the subtask is
 * back-pressured or the split is paused, counted in steps of at most {@link
 * #MAX_CHECK_GAP_NANOS} between two periodic checks: the checks run on the subtask's thread, so
 * a long gap between two of them means the thread was busy elsewhere (in a chained operator,
 * such as a Python UDF finishing a bundle) and the source could not read the partition
 * meanwhile. Idleness the wrapped generator declares itself (Flink's {@code
 * table.exec.source.idle-timeout} wraps it in its own) is ignored: this class alone marks the
 * output idle or active.
 */
final class ResumingIdleGenerator<T> implements WatermarkGenerator<T> {

    /**
     * The most time one periodic check adds. Flink checks every {@code
     * pipeline.auto-watermark-interval} (200 ms by default) while the subtask's thread is free.
     */
    static final long MAX_CHECK_GAP_NANOS = 1_000_000_000L;

    private final WatermarkGenerator<T> watermarks;
    private final InputActivity input;
    private final RelativeClock clock;
    private final long timeoutNanos;
    /** This output's number in its subtask (for the log). */
    private final int number;

    /** This output's records so far. */
    private long records;

    private long recordsAtLastCheck;
    private long othersAtLastCheck;
    private long lastCheck = -1;
    /** Time without a record of this output. */
    private long quietNanos;
    /** Of that time, the time during which other outputs' records kept arriving. */
    private long othersFlowedNanos;
    /** Time since the last check that found new records of other outputs. */
    private long sinceOthersMovedNanos = Long.MAX_VALUE / 2;

    /** The input's turn of this output's last run of records, or -1 before the first. */
    private long lastTurn = -1;

    /** Turns other outputs took since this output's last record (see {@link InputActivity}). */
    private int turnsSinceLastRecord;

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
        this.number = input.register(this);
    }

    @Override
    public void onEvent(T event, long eventTimestamp, WatermarkOutput output) {
        records++;
        input.recordArrived(this, clock.relativeTimeNanos(), timeoutNanos);
        if (idle) {
            activate(output);
        }
        watermarks.onEvent(event, eventTimestamp, eventWatermarks.to(output));
    }

    long lastTurn() {
        return lastTurn;
    }

    void tookTurn(long turn) {
        lastTurn = turn;
        turnsSinceLastRecord = 0;
    }

    void anotherTookATurn() {
        turnsSinceLastRecord++;
    }

    @Override
    public void onPeriodicEmit(WatermarkOutput output) {
        periodicOutput = output;
        if (idle) {
            return;
        }
        if (idleNow()) {
            idle = true;
            input.idle(number, quietNanos, othersFlowedNanos, turnsSinceLastRecord);
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

    private void activate(WatermarkOutput output) {
        idle = false;
        quietNanos = 0;
        othersFlowedNanos = 0;
        recordsAtLastCheck = records;
        othersAtLastCheck = input.records() - records;
        lastCheck = clock.relativeTimeNanos();
        output.markActive();
    }

    /**
     * Whether this output has been quiet for the timeout while other outputs' records kept
     * arriving for the timeout (so there is traffic, and not for it), and a later fetch than the
     * one of its last record came through ({@link InputActivity}). A step counts as "kept
     * arriving" when other records arrived within {@link #MAX_CHECK_GAP_NANOS} before it: a few
     * records and then a stall of the whole input count for about a second, not for the stall.
     */
    private boolean idleNow() {
        if (timeoutNanos <= 0) {
            return false;
        }
        long now = clock.relativeTimeNanos();
        long step = lastCheck < 0 ? 0 : Math.min(now - lastCheck, MAX_CHECK_GAP_NANOS);
        lastCheck = now;
        long others = input.records() - records;
        sinceOthersMovedNanos = others != othersAtLastCheck ? 0 : sinceOthersMovedNanos + step;
        othersAtLastCheck = others;
        if (records != recordsAtLastCheck) {
            recordsAtLastCheck = records;
            quietNanos = 0;
            othersFlowedNanos = 0;
            return false;
        }
        quietNanos += step;
        if (sinceOthersMovedNanos <= MAX_CHECK_GAP_NANOS) {
            othersFlowedNanos += step;
        }
        return quietNanos > timeoutNanos
                && othersFlowedNanos > timeoutNanos
                && (turnsSinceLastRecord >= InputActivity.TURNS_PROVING_A_NEW_FETCH
                        || othersFlowedNanos
                                > InputActivity.SINGLE_FLOW_TIMEOUTS * timeoutNanos);
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
