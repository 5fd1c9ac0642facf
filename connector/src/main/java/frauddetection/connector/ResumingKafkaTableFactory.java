package frauddetection.connector;

import java.time.Duration;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.connectors.kafka.table.KafkaDynamicSource;
import org.apache.flink.streaming.connectors.kafka.table.KafkaDynamicTableFactory;
import org.apache.flink.table.api.config.ExecutionConfigOptions;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.factories.FactoryUtil;

/**
 * {@code 'connector' = 'kafka-resuming'}: Flink's {@code kafka} connector, same options, whose
 * source judges a partition's idleness against the whole input it reads: a partition is idle
 * only when it gets nothing while the others have traffic, the input is never all idle, and
 * idle partitions count as active again when traffic resumes after a quiet spell (see {@link
 * InputActivity}). The idle timeout is Flink's own: the table's {@code
 * scan.watermark.idle-timeout}, else {@code table.exec.source.idle-timeout}; zero means no
 * partition is ever idle.
 */
public final class ResumingKafkaTableFactory extends KafkaDynamicTableFactory {

    public static final String IDENTIFIER = "kafka-resuming";

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public DynamicTableSource createDynamicTableSource(Context context) {
        KafkaDynamicSource kafka = (KafkaDynamicSource) super.createDynamicTableSource(context);
        Duration idleTimeout =
                Configuration.fromMap(context.getCatalogTable().getOptions())
                        .getOptional(FactoryUtil.SOURCE_IDLE_TIMEOUT)
                        .orElseGet(
                                () ->
                                        context.getConfiguration()
                                                .get(
                                                        ExecutionConfigOptions
                                                                .TABLE_EXEC_SOURCE_IDLE_TIMEOUT));
        return new ResumingKafkaSource(kafka, idleTimeout);
    }
}
