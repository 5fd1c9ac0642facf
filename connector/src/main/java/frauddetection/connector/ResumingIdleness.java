package frauddetection.connector;

import java.time.Duration;

import org.apache.flink.api.common.eventtime.TimestampAssigner;
import org.apache.flink.api.common.eventtime.TimestampAssignerSupplier;
import org.apache.flink.api.common.eventtime.WatermarkAlignmentParams;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkGeneratorSupplier;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;

/**
 * The table's watermark strategy with idleness judged against the subtask's whole input ({@link
 * InputActivity}): the wrapped strategy gives the watermarks and the timestamps, this one decides
 * when a partition is idle.
 *
 * <p>Flink deserializes a source's strategy once per subtask and asks it for one generator per
 * partition (and one for the source's main output), all called on the subtask's task thread; so
 * the {@link InputActivity} kept here is the subtask's.
 */
final class ResumingIdleness<T> implements WatermarkStrategy<T> {

    private static final long serialVersionUID = 1L;

    private final WatermarkStrategy<T> watermarks;
    private final Duration idleTimeout;
    private transient InputActivity input;

    ResumingIdleness(WatermarkStrategy<T> watermarks, Duration idleTimeout) {
        this.watermarks = watermarks;
        this.idleTimeout = idleTimeout;
    }

    @Override
    public WatermarkGenerator<T> createWatermarkGenerator(
            WatermarkGeneratorSupplier.Context context) {
        if (input == null) {
            input = new InputActivity();
        }
        return new ResumingIdleGenerator<>(
                watermarks.createWatermarkGenerator(context),
                input,
                context.getInputActivityClock(),
                idleTimeout.toNanos());
    }

    @Override
    public TimestampAssigner<T> createTimestampAssigner(TimestampAssignerSupplier.Context context) {
        return watermarks.createTimestampAssigner(context);
    }

    @Override
    public WatermarkAlignmentParams getAlignmentParameters() {
        return watermarks.getAlignmentParameters();
    }
}
