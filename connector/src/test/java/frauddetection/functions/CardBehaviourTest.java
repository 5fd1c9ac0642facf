package frauddetection.functions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.time.LocalDateTime;

import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

class CardBehaviourTest {

    static final LocalDateTime T0 = LocalDateTime.of(2026, 12, 7, 10, 0);
    static final long HORIZON = 30L * 24 * 3_600_000L;

    final CardBehaviour fn = new CardBehaviour();

    Row buy(CardBehaviour.Profile p, double amount, String device, String cat, String city,
            double lat, double lon, LocalDateTime at) {
        fn.accumulate(p, amount, device, cat, city, lat, lon, at, HORIZON);
        return CardBehaviour.features(p);
    }

    Row home(CardBehaviour.Profile p, double amount, LocalDateTime at) {
        return buy(p, amount, "d1", "grocery", "Austin", 30.27, -97.74, at);
    }

    @Test
    void theFirstPurchaseHasNoHistory() {
        Row f = home(fn.createAccumulator(), 40.0, T0);
        assertEquals(0, f.getField(0));
        assertEquals(1.0, (double) f.getField(1));
        assertTrue((boolean) f.getField(2));
        assertTrue((boolean) f.getField(3));
        assertTrue((boolean) f.getField(4));
        assertEquals(0.0, (double) f.getField(5));
        assertNull(f.getField(6));
        assertEquals(0, f.getField(7));
        assertEquals(0, f.getField(8));
    }

    @Test
    void aPurchaseIsJudgedAgainstTheCardsHistoryBeforeIt() {
        CardBehaviour.Profile p = fn.createAccumulator();
        home(p, 20.0, T0);
        home(p, 80.0, T0.plusMinutes(30));
        // usual = geometric mean of 20 and 80 = 40; 400 is ten times it
        Row f = buy(p, 400.0, "d9", "jewelry", "Denver", 39.74, -104.99, T0.plusMinutes(100));
        assertEquals(2, f.getField(0));
        assertEquals(10.0, (double) f.getField(1), 1e-9);
        assertTrue((boolean) f.getField(2), "new device");
        assertTrue((boolean) f.getField(3), "new category");
        assertTrue((boolean) f.getField(4), "new city");
        // Austin to Denver: about 1,240 km
        assertEquals(1240.0, (double) f.getField(5), 20.0);
        assertEquals(70.0, (double) f.getField(6), 1e-9);
        assertEquals(0, f.getField(7), "none in the hour before");
        assertEquals(2, f.getField(8));
        Row again = home(p, 40.0, T0.plusMinutes(110));
        assertFalse((boolean) again.getField(2));
        assertFalse((boolean) again.getField(3));
        assertFalse((boolean) again.getField(4));
        assertEquals(0.0, (double) again.getField(5), 1e-9);
        assertEquals(1, again.getField(7), "the Denver purchase, 10 min before");
        assertEquals(3, again.getField(8));
    }

    @Test
    void countsForgetPurchasesOlderThanTheirWindow() {
        CardBehaviour.Profile p = fn.createAccumulator();
        home(p, 10.0, T0);
        home(p, 10.0, T0.plusHours(23));
        Row f = home(p, 10.0, T0.plusHours(24).plusMinutes(30));
        assertEquals(0, f.getField(7));
        assertEquals(1, f.getField(8), "the first is more than 24 h back");
    }

    @Test
    void aCardIdleBeyondTheHorizonStartsAnew() {
        CardBehaviour.Profile p = fn.createAccumulator();
        home(p, 10.0, T0);
        Row f = home(p, 10.0, T0.plusDays(31));
        assertEquals(0, f.getField(0));
        assertTrue((boolean) f.getField(2));
        assertNull(f.getField(6));
        Row within = home(p, 10.0, T0.plusDays(40));
        assertEquals(1, within.getField(0));
    }

    @Test
    void theProfileStaysBounded() {
        CardBehaviour.Profile p = fn.createAccumulator();
        for (int i = 0; i < 500; i++) {
            buy(p, 10.0 + i, "d" + i, "c" + i, "city" + i, i % 80, i % 170,
                    T0.plusSeconds(60L * i));
        }
        assertEquals(CardBehaviour.DEVICES, p.devices.length);
        assertEquals(CardBehaviour.CATEGORIES, p.categories.length);
        assertEquals(CardBehaviour.PLACES, p.places.length);
        assertEquals(CardBehaviour.RECENT, p.recent.length);
        assertEquals(500, p.count);
        // the least recently seen goes first: the newest device is known, an early one is not
        assertFalse((boolean) buy(p, 10, "d499", "c499", "city499", 19, 159,
                T0.plusSeconds(60L * 501)).getField(2));
        assertTrue((boolean) buy(p, 10, "d3", "c499", "city499", 19, 159,
                T0.plusSeconds(60L * 502)).getField(2));
    }

    @Test
    void aFullProfileFitsInTwoKilobytes() throws IOException {
        CardBehaviour.Profile p = fn.createAccumulator();
        for (int i = 0; i < 200; i++) {
            buy(p, 10.0 + i, "d" + i, "c" + i, "city" + i, 1, 1, T0.plusSeconds(60L * i));
        }
        // the accumulator's fields as Flink's row serializer writes them: fixed-size values,
        // arrays as a length and their elements
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(p.count);
        out.writeDouble(p.logAmountSum);
        out.writeLong(p.lastMillis);
        for (int[] a : new int[][] {p.devices, p.categories, p.places}) {
            out.writeInt(a.length);
            for (int v : a) {
                out.writeInt(v);
            }
        }
        for (double[] a : new double[][] {p.placeLat, p.placeLon}) {
            out.writeInt(a.length);
            for (double v : a) {
                out.writeDouble(v);
            }
        }
        out.writeInt(p.recent.length);
        for (long v : p.recent) {
            out.writeLong(v);
        }
        out.writeInt(p.fHistory);
        out.writeDouble(p.fRatio);
        out.writeDouble(p.fKm);
        out.writeDouble(p.fMinutes);
        out.writeLong(0L); // three booleans, two counts
        out.writeLong(0L);
        assertTrue(bytes.size() < 2048, "profile " + bytes.size() + " B");
    }

    @Test
    void theValueIsOneJsonObjectWithNullForNoPreviousPurchase() {
        CardBehaviour.Profile p = fn.createAccumulator();
        fn.accumulate(p, 40.0, "d1", "grocery", "Austin", 30.27, -97.74, T0, HORIZON);
        assertEquals(
                "{\"history_count\":0,\"amount_ratio\":1.0,\"new_device\":true,"
                        + "\"new_category\":true,\"new_city\":true,\"km_from_usual\":0.0,"
                        + "\"minutes_since_previous\":null,\"count_1h\":0,\"count_24h\":0}",
                fn.getValue(p));
        fn.accumulate(p, 20.0, "d1", "grocery", "Austin", 30.27, -97.74, T0.plusSeconds(90),
                HORIZON);
        assertTrue(fn.getValue(p).contains("\"amount_ratio\":0.4999999999999999"), fn.getValue(p));
        assertTrue(fn.getValue(p).contains("\"minutes_since_previous\":1.5,"), fn.getValue(p));
    }

    @Test
    void distanceIsTheTravelRulesHaversine() {
        // New York to Los Angeles, about 3,936 km
        assertEquals(3936.0, CardBehaviour.km(40.7128, -74.006, 34.0522, -118.2437), 10.0);
    }
}
