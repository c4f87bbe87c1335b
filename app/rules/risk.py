"""Risk warnings (风险预警) over plain data: what the counters say about one purchase. Pure, no I/O.

The counters themselves are kept by the declare stage (``app/services/risk.py``) as each purchase is declared:
one row per (subject, time bucket, other) seen together, so "distinct buyer IDs at this address in 30 days"
is a count over that address's own rows, never a scan of history. Subjects are keyed hashes
(``subject_key``): the risk store holds no ID number, address or telephone in the clear.

Rules (thresholds in Settings, defaults from the customs review system's one-to-many links):

- R1 distinct buyer IDs per normalised consignee address in the window ≥ 5 (刷单 rings funnelling goods)
- R2 distinct addresses per buyer ID in the window ≥ 4 (a bought ID shipped all over)
- R3 distinct buyer IDs per consignee telephone in the window ≥ 3
- R4 orders per buyer ID in 24 h ≥ 5, or on ≥ 3 platforms (bursts)
- R5 the buyer's annual quota used ≥ 80 % with this purchase (quota theft shows here first)
- R6 a line's declared unit price below 50 % of that goods record's median price (under-declaring), once the
  goods record has been declared at least 20 times (a median of a log-scale price histogram, kept by upsert)
- R7 distinct buyer IDs whose payments to one platform carry the same payment second (``payTime``) ≥ 10:
  scripted payments of bought IDs. Honest buyers of one platform paying in one second are a handful even at
  a busy hour; a platform whose peak is busier than that raises the threshold.
- R8 (enterprise-level, ``enterprise_outliers``): an enterprise's rejection rate over 7 days above 2 × its
  peers' median, once it has enough records in the period to have a rate at all
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import statistics
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from app.rules.credit import R8_FACTOR, rejection_outlier

# Province-level names, as written with or without their suffix (浙江 / 浙江省, 上海 / 上海市, 广西 / 广西壮族自治区).
_PROVINCES = (
    "北京|天津|河北|山西|内蒙古|辽宁|吉林|黑龙江|上海|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|广西|海南|重庆"
    "|四川|贵州|云南|西藏|陕西|甘肃|青海|宁夏|新疆|台湾|香港|澳门"
)
_PROVINCE_PREFIX = re.compile(
    r"^(?:" + _PROVINCES + r")(?:省|市|特别行政区|壮族自治区|回族自治区|维吾尔自治区|自治区)?"
)
# The city and district part: up to the last administrative suffix near the start of what is left.
_DIVISION_PREFIX = re.compile(r"^(.{0,12}?(?:自治州|地区|新区|市|区|县|旗))(?!路|街|道|大道)")
_DIVISION_SUFFIX = re.compile(r"自治州|地区|市|区|县|旗")
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise_address(address: str) -> str:
    """The address as counted: full-width to half-width, lower case, no whitespace or punctuation, no province,
    and the city and district without their suffixes — so the ways people write one address count as one.

    >>> normalise_address("浙江省杭州市西湖区文三路 1号, 3幢") == normalise_address("杭州西湖区文三路1号3幢")
    True
    >>> normalise_address("上海市浦东新区张杨路１号")
    '浦东新张杨路1号'
    """
    text = unicodedata.normalize("NFKC", address).lower()
    text = _NOISE.sub("", text)
    text = _PROVINCE_PREFIX.sub("", text)
    divisions = ""
    while match := _DIVISION_PREFIX.match(text):
        divisions += _DIVISION_SUFFIX.sub("", match.group(1))
        text = text[match.end() :]
    return divisions + text


def subject_key(secret: bytes, kind: str, value: str) -> str:
    """A keyed hash (HMAC-SHA-256, 128 bits shown) of a normalised value: equal values count together, and
    the store cannot be read back into ID numbers without the secret."""
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Thresholds:
    ids_per_address: int = 5
    addresses_per_id: int = 4
    ids_per_phone: int = 3
    orders_per_id_day: int = 5
    platforms_per_id_day: int = 3
    quota_share: Decimal = Decimal("0.8")
    price_share: float = 0.5
    price_min_samples: int = 20
    ids_per_pay_second: int = 10


@dataclass(frozen=True)
class PurchaseSignals:
    """What the counters say about one purchase, this purchase included."""

    ids_at_address: int
    addresses_of_id: int
    ids_at_phone: int
    orders_of_id_day: int
    platforms_of_id_day: int
    quota_used: Decimal  # the buyer's dutiable value declared this year, this purchase included
    annual_limit: Decimal
    # The lowest (unit price / its goods record's median) over the order's lines; None: no median known yet.
    price_ratio: float | None = None
    # Distinct buyer IDs paying the same platform in the same payment second, this purchase included.
    ids_at_pay_second: int = 1


@dataclass(frozen=True)
class Warning:
    rule: str
    zh: str
    en: str
    value: str
    threshold: str


RULES = {
    "R1": ("同一收货地址关联的订购人过多", "Too many buyer IDs ship to one address"),
    "R2": ("同一订购人关联的收货地址过多", "One buyer ID ships to too many addresses"),
    "R3": ("同一收货电话关联的订购人过多", "Too many buyer IDs share one consignee telephone"),
    "R4": (
        "同一订购人24小时内下单过于频繁或跨平台过多",
        "One buyer ID orders too often, or on too many platforms, in 24 h",
    ),
    "R5": ("订购人年度额度使用已达预警比例", "The buyer has used most of the annual quota"),
    "R6": ("申报单价明显低于该备案商品的中位价格", "A declared unit price is far below the goods record's median"),
    "R7": ("同一秒内不同订购人向同一平台集中支付", "Many buyer IDs paid one platform in the same second"),
    "R8": (
        "企业7日内退单率超过同类企业中位数的2倍",
        "The enterprise's 7-day rejection rate is over twice its peers'",
    ),
}
PRICE_STEP = 1.1  # price histogram buckets are 10 % wide


def price_bucket(price: Decimal) -> int:
    """The histogram bucket of a unit price (log scale, 10 % wide; prices under 0.01 share bucket of 0.01).

    >>> price_bucket(Decimal("100")), price_bucket(Decimal("105")), price_bucket(Decimal("111"))
    (48, 48, 49)
    """
    return math.floor(math.log(max(float(price), 0.01)) / math.log(PRICE_STEP))


def median_price(histogram: Mapping[int, int], min_samples: int) -> float | None:
    """The median of a price histogram (its bucket's geometric middle), or None with fewer samples.

    >>> round(median_price({48: 30, 60: 1}, 20))
    102
    >>> median_price({48: 5}, 20) is None
    True
    """
    total = sum(histogram.values())
    if total < min_samples:
        return None
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if 2 * seen >= total:
            return float(PRICE_STEP ** (bucket + 0.5))
    return None  # unreachable: the loop reaches the total


def _warning(rule: str, value: object, threshold: object) -> Warning:
    zh, en = RULES[rule]
    return Warning(rule, zh, en, str(value), str(threshold))


def warnings_for(signals: PurchaseSignals, limits: Thresholds) -> list[Warning]:
    """Every rule the purchase's signals reach, in rule order.

    >>> quiet = PurchaseSignals(1, 1, 1, 1, 1, Decimal("200"), Decimal("26000"))
    >>> warnings_for(quiet, Thresholds())
    []
    >>> ring = PurchaseSignals(5, 1, 1, 1, 1, Decimal("200"), Decimal("26000"))
    >>> [w.rule for w in warnings_for(ring, Thresholds())]
    ['R1']
    """
    found: list[Warning] = []
    if signals.ids_at_address >= limits.ids_per_address:
        found.append(_warning("R1", signals.ids_at_address, limits.ids_per_address))
    if signals.addresses_of_id >= limits.addresses_per_id:
        found.append(_warning("R2", signals.addresses_of_id, limits.addresses_per_id))
    if signals.ids_at_phone >= limits.ids_per_phone:
        found.append(_warning("R3", signals.ids_at_phone, limits.ids_per_phone))
    if signals.orders_of_id_day >= limits.orders_per_id_day:
        found.append(_warning("R4", f"{signals.orders_of_id_day} orders", limits.orders_per_id_day))
    elif signals.platforms_of_id_day >= limits.platforms_per_id_day:
        found.append(_warning("R4", f"{signals.platforms_of_id_day} platforms", limits.platforms_per_id_day))
    share = signals.quota_used / signals.annual_limit if signals.annual_limit else Decimal("0")
    if share >= limits.quota_share:
        found.append(_warning("R5", f"{share:.2f}", limits.quota_share))
    if signals.price_ratio is not None and signals.price_ratio < limits.price_share:
        found.append(_warning("R6", f"{signals.price_ratio:.2f}", limits.price_share))
    if signals.ids_at_pay_second >= limits.ids_per_pay_second:
        found.append(_warning("R7", signals.ids_at_pay_second, limits.ids_per_pay_second))
    return found


@dataclass(frozen=True)
class PartyRates:
    """One enterprise's declarations in the period and the share of them rejected."""

    records: int
    rejection_rate: float


R8_MIN_RECORDS = 20  # an enterprise's records in the period before it has a rate


def enterprise_outliers(
    rates: Mapping[str, PartyRates], factor: float = R8_FACTOR, min_records: int = R8_MIN_RECORDS
) -> dict[str, Warning]:
    """R8 over one period: each enterprise (with at least ``min_records`` records) whose rejection rate is above
    ``factor`` × the median of its peers' (every other enterprise of the same role with at least as many
    records). Too few records make no rate: one rejection of one record would be 100 %.

    >>> quiet = {f"S{k}": PartyRates(100, 0.02) for k in range(5)}
    >>> sorted(enterprise_outliers(quiet | {"BAD": PartyRates(100, 0.10), "NEW": PartyRates(3, 1.0)}))
    ['BAD']
    """
    found: dict[str, Warning] = {}
    for code, mine in rates.items():
        if mine.records < min_records:
            continue
        peers = [r.rejection_rate for other, r in rates.items() if other != code and r.records >= min_records]
        peer_median = statistics.median(peers) if peers else 0.0
        if rejection_outlier(mine.rejection_rate, peer_median, bool(peers), factor):
            found[code] = _warning("R8", f"{mine.rejection_rate:.4f}", f"{factor} × {peer_median:.4f}")
    return found
