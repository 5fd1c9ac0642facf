package frauddetection.functions;

import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.Arrays;

import org.apache.flink.table.functions.AggregateFunction;
import org.apache.flink.types.Row;

/**
 * {@code card_behaviour(amount, device_id, merchant_category, city, lat, lon, event_time,
 * horizon_ms)} over a card's transactions in event-time order (the OVER operator of
 * sql_templates/enrichment/card_legs.sql.j2): what this transaction is <em>for this card</em>,
 * judged against the card's profile before it. The features are docs/contract.md's "Behaviour
 * features"; the same aggregate runs on the stream and on the lake's history (training), so a
 * transaction's features are the same in both.
 *
 * <p>The profile is bounded: the last {@value #DEVICES} devices, {@value #CATEGORIES} merchant
 * categories and {@value #PLACES} cities seen (least recently seen dropped first), the times of
 * at most {@value #RECENT} purchases of the last 24 h, and a running mean of the log amount.
 * Strings are kept as their {@code hashCode} (a collision makes a new value look known, about
 * one in 2^32 per pair). A card idle for more than {@code horizon_ms} of event time starts a
 * new profile.
 */
public final class CardBehaviour extends AggregateFunction<String, CardBehaviour.Profile> {

    /** The features' names, in their JSON order (docs/contract.md "Behaviour features"). */
    static final String[] FEATURES = {
        "history_count", "amount_ratio", "new_device", "new_category", "new_city",
        "km_from_usual", "minutes_since_previous", "count_1h", "count_24h",
    };

    static final int DEVICES = 8;
    static final int CATEGORIES = 16;
    static final int PLACES = 8;
    static final int RECENT = 64;
    static final long HOUR_MS = 3_600_000L;
    static final long DAY_MS = 24 * HOUR_MS;
    static final double EARTH_KM = 6371.0088; // the travel rules' radius (macros.sql.j2 km)

    /** A card's profile (the accumulator: Flink stores it as a structured row). */
    public static final class Profile {
        public int count;
        public double logAmountSum;
        public long lastMillis = Long.MIN_VALUE;
        public int[] devices = new int[0];
        public int[] categories = new int[0];
        public int[] places = new int[0];
        public double[] placeLat = new double[0];
        public double[] placeLon = new double[0];
        public long[] recent = new long[0];
        // the features of the transaction accumulated last: what getValue returns
        public int fHistory;
        public double fRatio = 1.0;
        public boolean fNewDevice = true;
        public boolean fNewCategory = true;
        public boolean fNewCity = true;
        public double fKm;
        public Double fMinutes;
        public int fCount1h;
        public int fCount24h;
    }

    @Override
    public Profile createAccumulator() {
        return new Profile();
    }

    public void accumulate(
            Profile p,
            Double amount,
            String deviceId,
            String category,
            String city,
            Double lat,
            Double lon,
            LocalDateTime eventTime,
            Long horizonMs) {
        if (eventTime == null) {
            return;
        }
        long now = eventTime.toInstant(ZoneOffset.UTC).toEpochMilli();
        if (p.lastMillis != Long.MIN_VALUE && horizonMs != null && now - p.lastMillis > horizonMs) {
            Profile fresh = new Profile();
            copy(fresh, p);
        }
        double logAmount = Math.log(Math.max(amount == null ? 0.0 : amount, 0.01));
        int device = hash(deviceId);
        int cat = hash(category);
        int place = hash(city);
        // the features, from the profile before this transaction
        p.fHistory = p.count;
        p.fRatio = p.count == 0 ? 1.0 : Math.exp(logAmount - p.logAmountSum / p.count);
        p.fNewDevice = indexOf(p.devices, device) < 0;
        p.fNewCategory = indexOf(p.categories, cat) < 0;
        p.fNewCity = indexOf(p.places, place) < 0;
        p.fKm = nearestKm(p, lat, lon);
        p.fMinutes = p.lastMillis == Long.MIN_VALUE ? null : (now - p.lastMillis) / 60_000.0;
        p.recent = within(p.recent, now - DAY_MS);
        p.fCount24h = p.recent.length;
        p.fCount1h = within(p.recent, now - HOUR_MS).length;
        // then the profile learns it
        p.count++;
        p.logAmountSum += logAmount;
        p.lastMillis = Math.max(p.lastMillis, now);
        p.devices = remember(p.devices, device, DEVICES);
        p.categories = remember(p.categories, cat, CATEGORIES);
        rememberPlace(p, place, lat, lon);
        p.recent = append(p.recent, now, RECENT);
    }

    /**
     * The features as JSON text (one object, {@link #FEATURES} in order, NULL as {@code null}):
     * text, not a ROW, because the Python scoring UDF reads it in the same Calc, and Flink's
     * planner cannot split a Python call from field accesses of a ROW (sql_templates/rules/
     * risk_score.sql.j2). Doubles print as Java's shortest round-trip form, so Python reads back
     * the very same values.
     */
    @Override
    public String getValue(Profile p) {
        Row f = features(p);
        StringBuilder json = new StringBuilder(200).append('{');
        for (int i = 0; i < FEATURES.length; i++) {
            json.append(i == 0 ? "\"" : ",\"").append(FEATURES[i]).append("\":")
                    .append(f.getField(i));
        }
        return json.append('}').toString();
    }

    static Row features(Profile p) {
        return Row.of(
                p.fHistory,
                p.fRatio,
                p.fNewDevice,
                p.fNewCategory,
                p.fNewCity,
                p.fKm,
                p.fMinutes,
                p.fCount1h,
                p.fCount24h);
    }

    /** {@code into} takes {@code from}'s place: a card back after the horizon starts anew. */
    private static void copy(Profile from, Profile into) {
        into.count = from.count;
        into.logAmountSum = from.logAmountSum;
        into.lastMillis = from.lastMillis;
        into.devices = from.devices;
        into.categories = from.categories;
        into.places = from.places;
        into.placeLat = from.placeLat;
        into.placeLon = from.placeLon;
        into.recent = from.recent;
    }

    static int hash(String value) {
        return value == null ? 0 : value.hashCode();
    }

    static int indexOf(int[] values, int value) {
        for (int i = 0; i < values.length; i++) {
            if (values[i] == value) {
                return i;
            }
        }
        return -1;
    }

    /** {@code values} with {@code value} last (most recently seen), at most {@code max} kept. */
    static int[] remember(int[] values, int value, int max) {
        int at = indexOf(values, value);
        int[] out;
        if (at >= 0) {
            out = new int[values.length];
            System.arraycopy(values, 0, out, 0, at);
            System.arraycopy(values, at + 1, out, at, values.length - at - 1);
        } else if (values.length < max) {
            out = Arrays.copyOf(values, values.length + 1);
        } else {
            out = Arrays.copyOfRange(values, 1, values.length + 1);
        }
        out[out.length - 1] = value;
        return out;
    }

    private static void rememberPlace(Profile p, int place, Double lat, Double lon) {
        int at = indexOf(p.places, place);
        double la = at >= 0 ? p.placeLat[at] : (lat == null ? Double.NaN : lat);
        double lo = at >= 0 ? p.placeLon[at] : (lon == null ? Double.NaN : lon);
        int n = p.places.length;
        int keep = at >= 0 || n < PLACES ? n : n - 1;
        int from = at < 0 && n >= PLACES ? 1 : 0; // full: the least recently seen goes
        int[] places = new int[keep + (at >= 0 ? 0 : 1)];
        double[] lats = new double[places.length];
        double[] lons = new double[places.length];
        int j = 0;
        for (int i = from; i < n; i++) {
            if (i == at) {
                continue;
            }
            places[j] = p.places[i];
            lats[j] = p.placeLat[i];
            lons[j] = p.placeLon[i];
            j++;
        }
        places[j] = place;
        lats[j] = la;
        lons[j] = lo;
        p.places = places;
        p.placeLat = lats;
        p.placeLon = lons;
    }

    private static double nearestKm(Profile p, Double lat, Double lon) {
        if (p.places.length == 0 || lat == null || lon == null) {
            return 0.0;
        }
        double best = Double.MAX_VALUE;
        for (int i = 0; i < p.places.length; i++) {
            if (!Double.isNaN(p.placeLat[i]) && !Double.isNaN(p.placeLon[i])) {
                best = Math.min(best, km(p.placeLat[i], p.placeLon[i], lat, lon));
            }
        }
        return best == Double.MAX_VALUE ? 0.0 : best;
    }

    /** Great-circle distance (haversine), as the travel rules compute it. */
    static double km(double lat1, double lon1, double lat2, double lon2) {
        double dLat = Math.toRadians(lat2 - lat1);
        double dLon = Math.toRadians(lon2 - lon1);
        double a =
                Math.sin(dLat / 2) * Math.sin(dLat / 2)
                        + Math.cos(Math.toRadians(lat1))
                                * Math.cos(Math.toRadians(lat2))
                                * Math.sin(dLon / 2)
                                * Math.sin(dLon / 2);
        return 2 * EARTH_KM * Math.asin(Math.min(1.0, Math.sqrt(a)));
    }

    /** The times after {@code since} (the list is in event-time order). */
    static long[] within(long[] times, long since) {
        int first = 0;
        while (first < times.length && times[first] <= since) {
            first++;
        }
        return first == 0 ? times : Arrays.copyOfRange(times, first, times.length);
    }

    static long[] append(long[] times, long time, int max) {
        long[] out =
                times.length < max
                        ? Arrays.copyOf(times, times.length + 1)
                        : Arrays.copyOfRange(times, 1, times.length + 1);
        out[out.length - 1] = time;
        return out;
    }
}
