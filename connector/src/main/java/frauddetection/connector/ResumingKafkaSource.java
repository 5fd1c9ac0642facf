package frauddetection.connector;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.streaming.connectors.kafka.table.KafkaDynamicSource;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.connector.source.ScanTableSource;
import org.apache.flink.table.connector.source.abilities.SupportsReadingMetadata;
import org.apache.flink.table.connector.source.abilities.SupportsWatermarkPushDown;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.DataType;

/**
 * Flink's Kafka table source with the planner's watermark strategy wrapped in {@link
 * ResumingIdleness}; everything else is the Kafka source's own.
 */
final class ResumingKafkaSource
        implements ScanTableSource, SupportsReadingMetadata, SupportsWatermarkPushDown {

    private final KafkaDynamicSource kafka;
    private final Duration idleTimeout;

    ResumingKafkaSource(KafkaDynamicSource kafka, Duration idleTimeout) {
        this.kafka = kafka;
        this.idleTimeout = idleTimeout;
    }

    @Override
    public void applyWatermark(WatermarkStrategy<RowData> watermarkStrategy) {
        kafka.applyWatermark(new ResumingIdleness<>(watermarkStrategy, idleTimeout));
    }

    @Override
    public ChangelogMode getChangelogMode() {
        return kafka.getChangelogMode();
    }

    @Override
    public ScanRuntimeProvider getScanRuntimeProvider(ScanContext context) {
        return kafka.getScanRuntimeProvider(context);
    }

    @Override
    public Map<String, DataType> listReadableMetadata() {
        return kafka.listReadableMetadata();
    }

    @Override
    public void applyReadableMetadata(List<String> metadataKeys, DataType producedDataType) {
        kafka.applyReadableMetadata(metadataKeys, producedDataType);
    }

    @Override
    public boolean supportsMetadataProjection() {
        return kafka.supportsMetadataProjection();
    }

    @Override
    public DynamicTableSource copy() {
        return new ResumingKafkaSource((KafkaDynamicSource) kafka.copy(), idleTimeout);
    }

    @Override
    public String asSummaryString() {
        return "Kafka (idleness judged against the whole input)";
    }
}
