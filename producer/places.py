"""A small table of real US cities (city-centre coordinates, rough population weight) and the
great-circle distance between them.

Cities come in regional clusters so that most have neighbours 30-80 km away (for geo hops and
trips to a nearby town), all have cities more than 1,500 km away (impossible travel) and
cities 400-1,200 km away (a journey of a few hours: account takeover, travel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class City:
    """A real place: name, two-letter state, latitude and longitude in degrees, weight."""

    name: str
    state: str
    lat: float
    lon: float
    weight: float  # roughly the population in 100,000s; used to place homes


# name, state, lat, lon, weight
_ROWS: tuple[tuple[str, str, float, float, float], ...] = (
    # New York metro and the north-east corridor
    ("New York", "NY", 40.7128, -74.0060, 84),
    ("Newark", "NJ", 40.7357, -74.1724, 3),
    ("Jersey City", "NJ", 40.7178, -74.0431, 3),
    ("Yonkers", "NY", 40.9312, -73.8988, 2),
    ("Stamford", "CT", 41.0534, -73.5387, 1.3),
    ("New Haven", "CT", 41.3083, -72.9279, 1.3),
    ("Trenton", "NJ", 40.2206, -74.7597, 0.9),
    ("Philadelphia", "PA", 39.9526, -75.1652, 16),
    ("Wilmington", "DE", 39.7391, -75.5398, 0.7),
    ("Allentown", "PA", 40.6023, -75.4714, 1.2),
    ("Baltimore", "MD", 39.2904, -76.6122, 5.8),
    ("Washington", "DC", 38.9072, -77.0369, 6.9),
    ("Arlington", "VA", 38.8799, -77.1068, 2.3),
    ("Annapolis", "MD", 38.9784, -76.4922, 0.4),
    ("Richmond", "VA", 37.5407, -77.4360, 2.3),
    # New England
    ("Boston", "MA", 42.3601, -71.0589, 6.5),
    ("Cambridge", "MA", 42.3736, -71.1097, 1.2),
    ("Worcester", "MA", 42.2626, -71.8023, 2.1),
    ("Providence", "RI", 41.8240, -71.4128, 1.9),
    ("Manchester", "NH", 42.9956, -71.4548, 1.1),
    ("Hartford", "CT", 41.7658, -72.6734, 1.2),
    ("Springfield", "MA", 42.1015, -72.5898, 1.5),
    # Ohio valley and Great Lakes
    ("Pittsburgh", "PA", 40.4406, -79.9959, 3.0),
    ("Cleveland", "OH", 41.4993, -81.6944, 3.7),
    ("Akron", "OH", 41.0814, -81.5190, 1.9),
    ("Columbus", "OH", 39.9612, -82.9988, 9.0),
    ("Cincinnati", "OH", 39.1031, -84.5120, 3.1),
    ("Dayton", "OH", 39.7589, -84.1916, 1.4),
    ("Detroit", "MI", 42.3314, -83.0458, 6.3),
    ("Ann Arbor", "MI", 42.2808, -83.7430, 1.2),
    ("Chicago", "IL", 41.8781, -87.6298, 27),
    ("Naperville", "IL", 41.7508, -88.1535, 1.5),
    ("Evanston", "IL", 42.0451, -87.6877, 0.7),
    ("Gary", "IN", 41.5934, -87.3464, 0.7),
    ("Milwaukee", "WI", 43.0389, -87.9065, 5.8),
    ("Racine", "WI", 42.7261, -87.7829, 0.8),
    ("Indianapolis", "IN", 39.7684, -86.1581, 8.8),
    ("Minneapolis", "MN", 44.9778, -93.2650, 4.3),
    ("Saint Paul", "MN", 44.9537, -93.0900, 3.1),
    # Midwest and plains
    ("St. Louis", "MO", 38.6270, -90.1994, 3.0),
    ("Kansas City", "MO", 39.0997, -94.5786, 5.1),
    ("Overland Park", "KS", 38.9822, -94.6708, 2.0),
    ("Lawrence", "KS", 38.9717, -95.2353, 1.0),
    ("Omaha", "NE", 41.2565, -95.9345, 4.9),
    ("Oklahoma City", "OK", 35.4676, -97.5164, 6.8),
    ("Tulsa", "OK", 36.1540, -95.9928, 4.1),
    # South-east
    ("Nashville", "TN", 36.1627, -86.7816, 6.9),
    ("Murfreesboro", "TN", 35.8456, -86.3903, 1.5),
    ("Memphis", "TN", 35.1495, -90.0490, 6.3),
    ("Louisville", "KY", 38.2527, -85.7585, 6.2),
    ("Atlanta", "GA", 33.7490, -84.3880, 5.0),
    ("Marietta", "GA", 33.9526, -84.5499, 0.6),
    ("Charlotte", "NC", 35.2271, -80.8431, 8.7),
    ("Raleigh", "NC", 35.7796, -78.6382, 4.7),
    ("Durham", "NC", 35.9940, -78.8986, 2.8),
    ("Greensboro", "NC", 36.0726, -79.7920, 3.0),
    ("Charleston", "SC", 32.7765, -79.9311, 1.5),
    # Florida
    ("Jacksonville", "FL", 30.3322, -81.6557, 9.5),
    ("Orlando", "FL", 28.5383, -81.3792, 3.1),
    ("Daytona Beach", "FL", 29.2108, -81.0228, 0.7),
    ("Tampa", "FL", 27.9506, -82.4572, 3.8),
    ("St. Petersburg", "FL", 27.7676, -82.6403, 2.6),
    ("Miami", "FL", 25.7617, -80.1918, 4.4),
    ("Fort Lauderdale", "FL", 26.1224, -80.1373, 1.8),
    ("West Palm Beach", "FL", 26.7153, -80.0534, 1.2),
    # Gulf coast and Texas
    ("New Orleans", "LA", 29.9511, -90.0715, 3.8),
    ("Baton Rouge", "LA", 30.4515, -91.1871, 2.2),
    ("Houston", "TX", 29.7604, -95.3698, 23),
    ("Galveston", "TX", 29.3013, -94.7977, 0.5),
    ("Dallas", "TX", 32.7767, -96.7970, 13),
    ("Fort Worth", "TX", 32.7555, -97.3308, 9.2),
    ("Austin", "TX", 30.2672, -97.7431, 9.6),
    ("Round Rock", "TX", 30.5083, -97.6789, 1.2),
    ("San Antonio", "TX", 29.4241, -98.4936, 14),
    ("New Braunfels", "TX", 29.7030, -98.1245, 0.9),
    ("El Paso", "TX", 31.7619, -106.4850, 6.8),
    # Mountain states and the south-west
    ("Denver", "CO", 39.7392, -104.9903, 7.1),
    ("Boulder", "CO", 40.0150, -105.2705, 1.1),
    ("Colorado Springs", "CO", 38.8339, -104.8214, 4.8),
    ("Albuquerque", "NM", 35.0844, -106.6504, 5.6),
    ("Santa Fe", "NM", 35.6870, -105.9378, 0.9),
    ("Phoenix", "AZ", 33.4484, -112.0740, 16),
    ("Mesa", "AZ", 33.4152, -111.8315, 5.0),
    ("Scottsdale", "AZ", 33.4942, -111.9261, 2.4),
    ("Tucson", "AZ", 32.2226, -110.9747, 5.4),
    ("Las Vegas", "NV", 36.1699, -115.1398, 6.4),
    ("Henderson", "NV", 36.0395, -114.9817, 3.2),
    ("Salt Lake City", "UT", 40.7608, -111.8910, 2.0),
    ("Provo", "UT", 40.2338, -111.6585, 1.1),
    ("Ogden", "UT", 41.2230, -111.9738, 0.9),
    ("Boise", "ID", 43.6150, -116.2023, 2.3),
    # California
    ("Los Angeles", "CA", 34.0522, -118.2437, 39),
    ("Long Beach", "CA", 33.7701, -118.1937, 4.6),
    ("Pasadena", "CA", 34.1478, -118.1445, 1.4),
    ("Irvine", "CA", 33.6846, -117.8265, 3.1),
    ("Riverside", "CA", 33.9533, -117.3962, 3.2),
    ("San Diego", "CA", 32.7157, -117.1611, 14),
    ("Oceanside", "CA", 33.1959, -117.3795, 1.7),
    ("San Francisco", "CA", 37.7749, -122.4194, 8.7),
    ("Oakland", "CA", 37.8044, -122.2712, 4.3),
    ("San Jose", "CA", 37.3382, -121.8863, 10),
    ("Berkeley", "CA", 37.8715, -122.2730, 1.2),
    ("Sacramento", "CA", 38.5816, -121.4944, 5.2),
    ("Davis", "CA", 38.5449, -121.7405, 0.7),
    ("Fresno", "CA", 36.7378, -119.7871, 5.4),
    # Pacific north-west
    ("Portland", "OR", 45.5152, -122.6784, 6.5),
    ("Salem", "OR", 44.9429, -123.0351, 1.8),
    ("Vancouver", "WA", 45.6387, -122.6615, 1.9),
    ("Seattle", "WA", 47.6062, -122.3321, 7.4),
    ("Tacoma", "WA", 47.2529, -122.4443, 2.2),
    ("Everett", "WA", 47.9790, -122.2021, 1.1),
    ("Spokane", "WA", 47.6588, -117.4260, 2.2),
)

CITIES: tuple[City, ...] = tuple(City(*row) for row in _ROWS)

# Travel bands used by the population and the scenarios (kilometres).
NEARBY_MAX_KM = 95.0  # normal trips to a neighbouring town stay under the 100 km travel floor
HOP_MIN_KM, HOP_MAX_KM = 30.0, 80.0  # geo-hop pairs
FAR_MIN_KM = 1600.0  # impossible-travel pairs: over 1,500 km with margin for jitter
# journeys hours long (account takeover, travel look-alike): far beyond any normal trip
AWAY_MIN_KM, AWAY_MAX_KM = 400.0, 1200.0


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@cache
def distance_km(i: int, j: int) -> float:
    """Distance between cities `CITIES[i]` and `CITIES[j]`."""
    a, b = CITIES[i], CITIES[j]
    return haversine_km(a.lat, a.lon, b.lat, b.lon)


def _within(i: int, lo: float, hi: float) -> tuple[int, ...]:
    return tuple(j for j in range(len(CITIES)) if j != i and lo <= distance_km(i, j) <= hi)


# Per city index: neighbours for normal trips, geo-hop partners, impossible-travel partners,
# and cities a journey of a few hours away (every city has at least 9).
NEARBY: tuple[tuple[int, ...], ...] = tuple(
    _within(i, 0.0, NEARBY_MAX_KM) for i in range(len(CITIES))
)
HOP_PARTNERS: tuple[tuple[int, ...], ...] = tuple(
    _within(i, HOP_MIN_KM, HOP_MAX_KM) for i in range(len(CITIES))
)
FAR_PARTNERS: tuple[tuple[int, ...], ...] = tuple(
    _within(i, FAR_MIN_KM, math.inf) for i in range(len(CITIES))
)
AWAY_PARTNERS: tuple[tuple[int, ...], ...] = tuple(
    _within(i, AWAY_MIN_KM, AWAY_MAX_KM) for i in range(len(CITIES))
)
