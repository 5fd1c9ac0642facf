package frauddetection.connector;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkGeneratorSupplier;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkOutputMultiplexer;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.util.clock.RelativeClock;
import org.junit.jupiter.api.Test;

/**
 * The strategy driven the way a Flink source subtask drives it: one generator per partition, each
 * writing to Flink's own {@link WatermarkOutputMultiplexer} (an immediate output for records, a
 * deferred one for the periodic emits, then one combine), on a clock the test moves.
 */
class ResumingIdlenessTest {

    private static final long DELAY_MS = 5_000;
    private static final Duration IDLE = Duration.ofSeconds(10);
    private static final long TICK_MS = 200;

    /** A subtask's source: its partitions, their generators and the watermark it emits. */
    private static final class Subtask {
        final long[] nowNanos = {1};
        final RelativeClock clock =
                new RelativeClock() {
                    @Override
                    public long relativeTimeMillis() {
                        return nowNanos[0] / 1_000_000;
                    }

                    @Override
                    public long relativeTimeNanos() {
                        return nowNanos[0];
                    }
                };
        final List<Long> emitted = new ArrayList<>();
        final WatermarkOutputMultiplexer multiplexer =
                new WatermarkOutputMultiplexer(
                        new WatermarkOutput() {
                            @Override
                            public void emitWatermark(Watermark watermark) {
                                emitted.add(watermark.getTimestamp());
                            }

                            @Override
                            public void markIdle() {}

                            @Override
                            public void markActive() {}
                        });
        final Map<String, WatermarkGenerator<Long>> generators = new LinkedHashMap<>();
        final WatermarkStrategy<Long> strategy;

        Subtask(WatermarkStrategy<Long> watermarks, Duration idleTimeout, String... partitions) {
            strategy = new ResumingIdleness<>(watermarks, idleTimeout);
            WatermarkGeneratorSupplier.Context context =
                    new WatermarkGeneratorSupplier.Context() {
                        @Override
                        public MetricGroup getMetricGroup() {
                            return new UnregisteredMetricsGroup();
                        }

                        @Override
                        public RelativeClock getInputActivityClock() {
                            return clock;
                        }
                    };
            for (String p : partitions) {
                multiplexer.registerNewOutput(p);
                generators.put(p, strategy.createWatermarkGenerator(context));
            }
        }

        Subtask(String... partitions) {
            this(
                    WatermarkStrategy.<Long>forBoundedOutOfOrderness(Duration.ofMillis(DELAY_MS))
                            .withTimestampAssigner((t, ts) -> t),
                    IDLE,
                    partitions);
        }

        void record(String partition, long eventTimeMs) {
            generators
                    .get(partition)
                    .onEvent(
                            eventTimeMs,
                            eventTimeMs,
                            multiplexer.getImmediateOutput(partition));
        }

        /** Wall-clock time passes, with a periodic emit every 200 ms, as in a source subtask. */
        void elapse(long ms) {
            for (long t = 0; t < ms; t += TICK_MS) {
                nowNanos[0] += TICK_MS * 1_000_000;
                generators.forEach(
                        (p, g) -> g.onPeriodicEmit(multiplexer.getDeferredOutput(p)));
                multiplexer.onPeriodicEmit();
            }
        }

        /**
         * The subtask's thread is busy for `ms` (in a chained operator) and then free for one
         * periodic check.
         */
        void busy(long ms) {
            nowNanos[0] += ms * 1_000_000;
            generators.forEach((p, g) -> g.onPeriodicEmit(multiplexer.getDeferredOutput(p)));
            multiplexer.onPeriodicEmit();
        }

        long watermark() {
            return emitted.isEmpty() ? Long.MIN_VALUE : emitted.get(emitted.size() - 1);
        }
    }

    private static long wm(long eventTimeMs) {
        return eventTimeMs - DELAY_MS - 1;
    }

    @Test
    void aBurstOnAQuietInputWaitsForEveryPartitionThatHadTraffic() {
        Subtask s = new Subtask("p0", "p1", "p2", "p3");
        for (String p : s.generators.keySet()) {
            s.record(p, 1_000_000);
        }
        s.elapse(1_000);
        assertEquals(wm(1_000_000), s.watermark());
        s.elapse(60_000); // every partition goes quiet, then idle
        long beforeBurst = s.watermark();

        // the burst reaches p0 first, hours of event time ahead
        for (long t = 2_000_000; t < 9_000_000; t += 1_000) {
            s.record("p0", t);
        }
        s.elapse(1_000);
        assertEquals(beforeBurst, s.watermark(), "p1..p3 may still have records coming");

        // p1 and p2 follow, and keep their traffic; p3 gets nothing
        s.record("p1", 2_000_000);
        s.record("p2", 2_000_500);
        s.elapse(1_000);
        assertEquals(beforeBurst, s.watermark(), "p3 holds it until it is idle once more");
        for (int i = 1; i <= 11; i++) {
            s.record("p1", 2_000_000 + i * 1_000L);
            s.record("p2", 2_000_500 + i * 1_000L);
            s.elapse(1_000);
        }
        assertEquals(wm(2_011_000), s.watermark(), "p3 idle again: the slowest of p0..p2");
    }

    @Test
    void aPartitionIsNotIdleWhileTheSubtaskIsTooBusyToReadIt() {
        // the thread emits p0's records, then spends 5 s in a chained operator, again and
        // again: p1's records are on their way, so p1 is not idle however long that takes
        Subtask s = new Subtask("p0", "p1");
        s.record("p1", 1_000_000);
        for (int i = 1; i <= 8; i++) {
            s.record("p0", 1_000_000 + i * 60_000L);
            s.busy(5_000);
        }
        assertEquals(wm(1_000_000), s.watermark(), "p1 still holds the watermark");
        s.record("p1", 1_000_001);
        s.elapse(400);
        assertEquals(wm(1_000_001), s.watermark());
        // while the thread is free, quiet time counts as it passes (p0 alone has traffic, so
        // p1 is idle after SINGLE_FLOW_TIMEOUTS timeouts)
        for (int i = 1; i <= 61; i++) {
            s.record("p0", 1_480_000 + i * 1_000L);
            s.elapse(1_000);
        }
        assertEquals(wm(1_541_000), s.watermark(), "p1 idle after 60 s of quiet");
    }

    @Test
    void aStallOfTheWholeInputIdlesNoPartition() {
        // a backlog read unevenly (p0 hours ahead of p1), then nothing from anywhere for a
        // minute that Flink does not count as back-pressure: if p1 were idle, the watermark
        // would jump to p0's and p1's next records would be late
        Subtask s = new Subtask("p0", "p1");
        s.record("p0", 10_000_000);
        s.record("p1", 1_000_000);
        s.elapse(1_000);
        assertEquals(wm(1_000_000), s.watermark());
        s.elapse(60_000);
        assertEquals(wm(1_000_000), s.watermark(), "no partition idle, none overtaken");
        s.record("p1", 1_001_000);
        s.record("p0", 10_001_000);
        s.elapse(400);
        assertEquals(wm(1_001_000), s.watermark());
    }

    @Test
    void aFewRecordsThenAStallIdleNoPartition() {
        // at a cold start one partition's first fetch comes through, then the whole source
        // waits (its consumer, the pipeline starting): the others must not be idle for it
        Subtask s = new Subtask("p0", "p1", "p2");
        for (int i = 0; i < 3; i++) {
            s.record("p1", 9_000_000 + i * 1_000L);
        }
        s.elapse(60_000);
        s.record("p0", 1_000_000);
        s.record("p2", 1_000_500);
        s.elapse(400);
        assertEquals(wm(1_000_000), s.watermark(), "p0 and p2 were never left out");
    }

    @Test
    void anIdlePartitionCountsAsActiveAgainWhenTheInputResumes() {
        // p1 had no traffic while p0 had, so it was idle; after a quiet spell a burst reaches
        // p0 first: p1 holds the watermark at its old place until it has its own records
        Subtask s = new Subtask("p0", "p1");
        s.record("p1", 1_000_000);
        for (int i = 0; i < 65; i++) {
            s.record("p0", 1_000_000 + i * 1_000L);
            s.elapse(1_000);
        }
        assertEquals(wm(1_064_000), s.watermark(), "p1 idle while p0 has traffic");
        s.elapse(30_000);
        for (long t = 2_000_000; t < 3_000_000; t += 1_000) {
            s.record("p0", t);
        }
        s.elapse(1_000);
        assertEquals(wm(1_064_000), s.watermark(), "p1 counts as active again");
        s.record("p1", 2_000_500);
        s.elapse(400);
        assertEquals(wm(2_000_500), s.watermark());
    }

    @Test
    void theInputIsNeverAllIdleSoTheWatermarkDoesNotJumpToTheFurthestPartition() {
        Subtask s = new Subtask("p0", "p1");
        for (int i = 0; i < 5; i++) {
            s.record("p0", 5_000_000 + i * 1_000L);
            s.record("p1", 1_000_000 + i * 1_000L);
            s.elapse(1_000);
        }
        s.elapse(120_000);
        assertEquals(wm(1_004_000), s.watermark(), "Flink would flush to p0's when all idle");
    }

    @Test
    void aPartitionWithoutTrafficDoesNotHoldTheWatermarkForEver() {
        Subtask s = new Subtask("p0", "empty");
        s.record("p0", 1_000_000);
        s.elapse(1_000);
        assertEquals(Long.MIN_VALUE, s.watermark(), "the empty partition is not idle yet");
        for (int i = 1; i <= 61; i++) {
            s.record("p0", 1_000_000 + i * 1_000L);
            s.elapse(1_000);
        }
        assertEquals(wm(1_061_000), s.watermark());
    }

    @Test
    void aQuietPartitionStaysIdleWhileTheOthersHaveTraffic() {
        Subtask s = new Subtask("busy", "quiet");
        s.record("quiet", 1_000_000);
        for (int i = 0; i < 70; i++) {
            s.record("busy", 1_000_000 + i * 1_000L);
            s.elapse(1_000);
        }
        // one partition with traffic takes no turns: idle after 6 timeouts, then the busy
        // partition alone moves the watermark
        assertEquals(wm(1_069_000), s.watermark());
    }

    @Test
    void aQuietPartitionIsIdleAfterTheTimeoutWhenTheOthersTakeTurns() {
        Subtask s = new Subtask("p0", "p1", "quiet");
        s.record("quiet", 1_000_000);
        for (int i = 0; i < 12; i++) {
            s.record("p0", 1_000_000 + i * 1_000L);
            s.record("p1", 1_000_000 + i * 1_000L);
            s.elapse(1_000);
        }
        assertEquals(wm(1_011_000), s.watermark(), "quiet idle after 10 s of the others' turns");
    }

    @Test
    void aPartitionWaitingBehindTheOthersFetchIsNotIdle() {
        // a backlog written in 1 MB producer batches: the consumer's first fetch holds one
        // batch of every partition and hands them over one partition at a time; the pipeline
        // needs 8 s for each, so p3 waits 24 s behind the others' records
        Subtask s = new Subtask("p0", "p1", "p2", "p3");
        for (String p : new String[] {"p0", "p1", "p2"}) {
            for (int i = 0; i < 40; i++) {
                s.record(p, 1_000_000 + i * 60_000L);
                s.elapse(200);
            }
        }
        assertEquals(Long.MIN_VALUE, s.watermark(), "p3 holds the watermark: it has had no turn");
        s.record("p3", 1_000_000);
        s.elapse(400);
        assertEquals(wm(1_000_000), s.watermark(), "p3's first record is on time");
    }

    @Test
    void aPartitionThatWakesAloneIsNotHeldBack() {
        Subtask s = new Subtask("p0");
        s.record("p0", 1_000_000);
        s.elapse(30_000);
        s.record("p0", 2_000_000);
        s.elapse(400);
        assertEquals(wm(2_000_000), s.watermark());
    }

    @Test
    void theWrappedStrategysOwnIdlenessIsIgnored() {
        // Flink wraps the table's generator in its own idleness (table.exec.source.idle-timeout):
        // only the whole-input rule decides, with the same timeout
        Subtask s =
                new Subtask(
                        WatermarkStrategy.<Long>forBoundedOutOfOrderness(
                                        Duration.ofMillis(DELAY_MS))
                                .withTimestampAssigner((t, ts) -> t)
                                .withIdleness(IDLE),
                        IDLE,
                        "p0",
                        "p1");
        s.record("p0", 1_000_000);
        s.record("p1", 1_000_000);
        s.elapse(60_000);
        long beforeBurst = s.watermark();
        s.record("p0", 5_000_000);
        s.elapse(2_000);
        assertEquals(beforeBurst, s.watermark());
        s.record("p1", 4_000_000);
        s.elapse(400);
        assertEquals(wm(4_000_000), s.watermark());
    }

    @Test
    void aZeroTimeoutMeansNoPartitionIsEverIdle() {
        Subtask s =
                new Subtask(
                        WatermarkStrategy.<Long>forBoundedOutOfOrderness(
                                        Duration.ofMillis(DELAY_MS))
                                .withTimestampAssigner((t, ts) -> t),
                        Duration.ZERO,
                        "p0",
                        "empty");
        for (int i = 0; i < 60; i++) {
            s.record("p0", 1_000_000 + i * 1_000L);
            s.elapse(1_000);
        }
        assertEquals(Long.MIN_VALUE, s.watermark());
    }
}
