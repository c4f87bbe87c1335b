"""The benchmark's workload: realistic purchases, as a stream of JSON documents, JSON batches or CEB XML messages.

A *purchase* is one order (订单, 1–5 lines of filed goods, tax computed as customs computes it), its payment
(支付单) and its waybill (运单). About 5 % of the purchases are built not to match (another payer, a short
payment, another consignee address or telephone), and about 2 % of the documents sent are resends of a document
already in the stream (with a new ``guid``, as a platform resends: an idempotent replay).

The documents of one purchase arrive in random order, interleaved with those of the other purchases of a small
window; batches group the stream by (document type, sender) in 100s, as a platform, a payment firm or a carrier
would send them. Everything is deterministic from (seed, prefix, start): the harness and the load generator
build the same stream independently.

The parties (two platforms, three sellers, two payment firms, two carriers) and the sellers' goods records
(商品备案) are fixed; :func:`file_everything` files them through the admin API.
"""

from __future__ import annotations

import copy
import hashlib
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import httpx
from stdnum.cn import ric

from app.ceb import codec, samples
from app.rules.tax import TaxableLine, assess

DocType = Literal["order", "payment", "waybill"]
DOC_TYPES: tuple[DocType, ...] = ("order", "payment", "waybill")
PATHS = {"order": "orders", "payment": "payments", "waybill": "waybills"}
OWNER_FIELD = {"order": "ebpCode", "payment": "payCode", "waybill": "logisticsCode"}
NUMBER_FIELD = {"order": "orderNo", "payment": "payTransactionId", "waybill": "logisticsNo"}

MISMATCH_RATE = 0.05
DUPLICATE_RATE = 0.02
BATCH_SIZE = 100
WINDOW = 8  # purchases whose documents are shuffled together
APP_TIME = "20261111100000"  # Double 11, China time
PAY_FROM = datetime(2026, 11, 10, 10, 0)  # noqa: DTZ001 - CEB wall clock: payments over the 24 hours …
PAY_SPREAD_S = 86_400  # … before the documents are sent (APP_TIME)

# --- parties -----------------------------------------------------------------------------------------------


def _enterprise(code: str, name: str, role: str) -> dict[str, Any]:
    return {"code": code, "name": name, "roles": [role]}


PLATFORMS = [
    _enterprise("3301960A01", "云购全球跨境电商平台", "platform"),
    _enterprise("4403960A07", "鹏城海淘跨境电商平台", "platform"),
]
SELLERS = [
    _enterprise("3301960A11", "东京优选海外旗舰店", "seller"),
    _enterprise("3301960A12", "首尔美妆海外旗舰店", "seller"),
    _enterprise("4403960A13", "欧洲母婴海外专营店", "seller"),
]
PAYMENT_FIRMS = [
    _enterprise("3301960P01", "易付宝支付有限公司", "payment"),
    _enterprise("4403960P02", "财付通支付科技有限公司", "payment"),
]
CARRIERS = [
    _enterprise("3301960L01", "顺达国际物流有限公司", "logistics"),
    _enterprise("4403960L02", "中外运跨境速递有限公司", "logistics"),
]
ENTERPRISES = PLATFORMS + SELLERS + PAYMENT_FIRMS + CARRIERS
NAMES = {e["code"]: e["name"] for e in ENTERPRISES}


@dataclass(frozen=True)
class Item:
    """A seller's filed item: what the order line says and what the goods record (商品备案) files."""

    item_no: str
    name: str
    gmodel: str
    gcode: str
    unit: str  # transaction unit of the order line
    price: Decimal
    unit1: str
    qty1_factor: str
    unit2: str | None
    qty2_factor: str | None
    country: str
    vat_rate: Decimal
    consumption_tax_rate: Decimal
    weight_kg: Decimal

    def goods_record(self, ebc_code: str) -> dict[str, Any]:
        record = {
            "ebcCode": ebc_code,
            "itemNo": self.item_no,
            "gcode": self.gcode,
            "gname": self.name,
            "unit1": self.unit1,
            "qty1Factor": self.qty1_factor,
            "country": self.country,
            "vatRate": str(self.vat_rate),
            "consumptionTaxRate": str(self.consumption_tax_rate),
            "positiveList": True,
        }
        if self.unit2 is not None:
            record |= {"unit2": self.unit2, "qty2Factor": self.qty2_factor}
        return record


# Cosmetics carry the 15 % consumption tax; food, supplements and baby goods only VAT (13 %). Columns: seller,
# itemNo, name, gmodel, HS code, order-line unit, price, legal unit 1, qty1 per unit, origin, VAT, consumption tax,
# gross weight (kg), and whether the second legal unit is 011 (件) at 1 per unit.
# fmt: off
_ITEMS = [
    ("3301960A11", "JP-SSD-50", "资生堂红腰子精华液 50ml", "50ml/瓶,精华液,资生堂", "3304990099", "142", "200.00",
     "035", "0.05", "116", "0.13", "0.15", "0.15", True),
    ("3301960A11", "JP-SKII-230", "SK-II神仙水 230ml", "230ml/瓶,护肤精华露,SK-II", "3304990099", "142", "1069.00",
     "035", "0.23", "116", "0.13", "0.15", "0.45", True),
    ("3301960A11", "JP-ANS-60", "安热沙防晒霜 60ml", "60ml/瓶,防晒乳,安热沙", "3304990099", "142", "168.00",
     "035", "0.06", "116", "0.13", "0.15", "0.12", True),
    ("3301960A11", "JP-KAO-MASK", "花王蒸汽眼罩 12片", "12片/盒,蒸汽眼罩,花王", "9019101000", "140", "79.90",
     "011", "1", "116", "0.13", "0", "0.10", False),
    ("3301960A11", "JP-DHC-VC", "DHC维生素C片 90日", "90粒/袋,维生素C,DHC", "2106909090", "140", "59.00",
     "035", "0.04", "116", "0.13", "0", "0.06", False),
    ("3301960A12", "KR-WHOO-150", "后拱辰享水乳套装", "150ml+110ml/套,水乳,后", "3304990099", "140", "880.00",
     "035", "0.36", "133", "0.13", "0.15", "0.80", True),
    ("3301960A12", "KR-3CE-LIP", "3CE哑光口红 3.5g", "3.5g/支,口红,3CE", "3304100091", "007", "139.00",
     "036", "3.5", "133", "0.13", "0.15", "0.05", True),
    ("3301960A12", "KR-MED-MASK", "可莱丝针剂面膜 10片", "10片/盒,面膜,可莱丝", "3304990099", "140", "99.00",
     "035", "0.25", "133", "0.13", "0.15", "0.30", True),
    ("3301960A12", "KR-CKD-TEA", "正官庄高丽参茶 100包", "3g*100包/盒,人参茶,正官庄", "2106909090", "140", "329.00",
     "035", "0.3", "133", "0.13", "0", "0.40", False),
    ("4403960A13", "DE-APT-3", "爱他美婴儿配方奶粉3段 800g", "800g/罐,婴幼儿配方奶粉,爱他美", "1901101000", "122",
     "268.00", "035", "0.8", "304", "0.13", "0", "1.05", True),
    ("4403960A13", "NL-NUT-2", "牛栏婴儿配方奶粉2段 800g", "800g/罐,婴幼儿配方奶粉,牛栏", "1901101000", "122",
     "239.00", "035", "0.8", "309", "0.13", "0", "1.05", True),
    ("4403960A13", "DE-PAM-L", "帮宝适纸尿裤L码 68片", "68片/包,纸尿裤,帮宝适", "9619001100", "140", "139.00",
     "035", "1.9", "304", "0.13", "0", "2.10", True),
    ("4403960A13", "AU-SWI-FO", "Swisse深海鱼油胶囊 400粒", "400粒/瓶,鱼油,Swisse", "2106909090", "142", "199.00",
     "035", "0.5", "601", "0.13", "0", "0.65", True),
    ("4403960A13", "FR-AVE-300", "雅漾舒泉喷雾 300ml", "300ml/瓶,爽肤水,雅漾", "3304990099", "142", "158.00",
     "035", "0.3", "305", "0.13", "0.15", "0.38", True),
]
# fmt: on
CATALOGUE: dict[str, list[Item]] = {}
for _row in _ITEMS:
    (_seller, _no, _name, _model, _gcode, _unit, _price, _unit1, _f1, _country, _vat, _cons, _weight, _second) = _row
    _unit2, _f2 = ("011", "1") if _second else (None, None)
    _entry = Item(_no, _name, _model, _gcode, _unit, Decimal(_price), _unit1, _f1, _unit2, _f2, _country,
                  Decimal(_vat), Decimal(_cons), Decimal(_weight))  # fmt: skip
    CATALOGUE.setdefault(_seller, []).append(_entry)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红鹏辉建国宁欣怡子涵浩然梓轩"
DISTRICTS = [
    ("330106", "浙江省杭州市西湖区文三路"),
    ("330110", "浙江省杭州市余杭区五常大道"),
    ("310115", "上海市浦东新区张杨路"),
    ("440305", "广东省深圳市南山区科技园南路"),
    ("440106", "广东省广州市天河区天河北路"),
    ("320106", "江苏省南京市鼓楼区中山北路"),
    ("510107", "四川省成都市武侯区天府大道"),
    ("420106", "湖北省武汉市武昌区中南路"),
    ("370202", "山东省青岛市市南区香港中路"),
    ("350203", "福建省厦门市思明区湖滨南路"),
]
SEED_DISTRICT = "110101"  # buyers of the seeded (already stored) purchases, never used by the stream
_BIRTH0 = date(1965, 1, 1)


def buyer_id_number(k: int) -> str:
    """The k-th buyer's resident ID: a real district, birth date and sequence, and GB 11643's check digit."""
    district = DISTRICTS[k % len(DISTRICTS)][0]
    k //= len(DISTRICTS)
    born = _BIRTH0 + timedelta(days=k % 12000)
    sequence = (k // 12000) % 1000
    body = f"{district}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")  # the function reads the first 17 characters of 18


def buyer(k: int) -> dict[str, str]:
    district, street = DISTRICTS[k % len(DISTRICTS)]
    name = SURNAMES[k % len(SURNAMES)] + GIVEN[(k // 7) % len(GIVEN)] + GIVEN[(k // 131) % len(GIVEN)]
    return {
        "id": buyer_id_number(k),
        "name": name,
        "telephone": f"13{(k * 7919) % 10**9:09d}",
        "address": f"{street}{k % 997 + 1}号{k % 31 + 1}幢{k % 7 + 1}0{k % 4 + 1}室",
        "district": district,
        "regNo": f"user_{k:09d}",
    }


# --- purchases ---------------------------------------------------------------------------------------------


@dataclass
class Purchase:
    index: int
    order: dict[str, Any]
    payment: dict[str, Any]
    waybill: dict[str, Any]
    mismatch: str | None  # the discrepancy code it was built to show, None when it must match

    def documents(self) -> dict[DocType, dict[str, Any]]:
        return {"order": self.order, "payment": self.payment, "waybill": self.waybill}


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def pay_time(prefix: str, index: int) -> str:
    """When the purchase was paid: spread over the day before APP_TIME as independent draws (a hash, so the stream's
    random sequence is untouched), so honest buyers paying one platform in one second are as rare as in life —
    a handful at most, where risk rule R7 looks for ten."""
    digest = hashlib.sha256(f"pay:{prefix}:{index}".encode()).digest()
    offset = int.from_bytes(digest[:8], "big") % PAY_SPREAD_S
    return f"{PAY_FROM + timedelta(seconds=offset):%Y%m%d%H%M%S}"


def order_number(prefix: str, index: int) -> str:
    return f"{prefix}{index:012d}"


def make_purchase(
    prefix: str,
    index: int,
    rng: random.Random,
    *,
    mismatch_rate: float = MISMATCH_RATE,
    price_factor: Decimal = Decimal("1"),
) -> Purchase:
    """One purchase; its buyer is shared with one other purchase of the stream (the annual quota is read).
    ``price_factor`` declares the goods at a share of their price (an under-priced purchase, consistent)."""
    order_no = order_number(prefix, index)
    platform = PLATFORMS[rng.randrange(len(PLATFORMS))]
    seller = SELLERS[rng.randrange(len(SELLERS))]
    pay_firm = PAYMENT_FIRMS[rng.randrange(len(PAYMENT_FIRMS))]
    carrier = CARRIERS[rng.randrange(len(CARRIERS))]
    person = buyer(_buyer_key(prefix, index))
    catalogue = CATALOGUE[seller["code"]]
    items = rng.sample(catalogue, k=min(len(catalogue), rng.choice((1, 1, 1, 2, 2, 3, 4, 5))))
    lines: list[dict[str, Any]] = []
    for gnum, item in enumerate(items, start=1):
        qty = 1 if item.price > 500 else rng.choice((1, 1, 2, 3))
        price = (item.price * price_factor).quantize(Decimal("0.01"))
        lines.append(
            {
                "gnum": gnum,
                "itemNo": item.item_no,
                "itemName": item.name,
                "gmodel": item.gmodel,
                "unit": item.unit,
                "qty": str(qty),
                "price": _money(price),
                "totalPrice": _money(price * qty),
                "currency": "142",
                "country": item.country,
            }
        )
    goods_value = sum((Decimal(line["totalPrice"]) for line in lines), Decimal("0"))
    freight = Decimal(rng.choice(("0", "0", "10.00", "15.00")))
    discount = Decimal(rng.choice(("0", "0", "0", "5.00", "20.00")))
    tax = assess(
        [
            TaxableLine(line["gnum"], Decimal(line["totalPrice"]), item.vat_rate, item.consumption_tax_rate)
            for line, item in zip(lines, items, strict=True)
        ],
        freight=freight,
    ).tax_total
    paid = goods_value + freight + tax - discount
    weight = sum((item.weight_kg * Decimal(line["qty"]) for line, item in zip(lines, items, strict=True)), Decimal(0))
    pay_id = f"PAY{order_no}"
    order = {
        "guid": _guid(rng),
        "appType": "1",
        "appTime": APP_TIME,
        "appStatus": "2",
        "orderType": "I",
        "orderNo": order_no,
        "ebpCode": platform["code"],
        "ebpName": platform["name"],
        "ebcCode": seller["code"],
        "ebcName": seller["name"],
        "goodsValue": _money(goods_value),
        "freight": _money(freight),
        "discount": _money(discount),
        "taxTotal": _money(tax),
        "acturalPaid": _money(paid),
        "currency": "142",
        "buyerRegNo": person["regNo"],
        "buyerName": person["name"],
        "buyerTelephone": person["telephone"],
        "buyerIdType": "1",
        "buyerIdNumber": person["id"],
        "payCode": pay_firm["code"],
        "payName": pay_firm["name"],
        "payTransactionId": pay_id,
        "consignee": person["name"],
        "consigneeTelephone": person["telephone"],
        "consigneeAddress": person["address"],
        "consigneeDistrict": person["district"],
        "orderList": lines,
    }
    payment = {
        "guid": _guid(rng),
        "appType": "1",
        "appTime": APP_TIME,
        "appStatus": "2",
        "payCode": pay_firm["code"],
        "payName": pay_firm["name"],
        "payTransactionId": pay_id,
        "orderNo": order_no,
        "ebpCode": platform["code"],
        "ebpName": platform["name"],
        "payerIdType": "1",
        "payerIdNumber": person["id"],
        "payerName": person["name"],
        "telephone": person["telephone"],
        "amountPaid": _money(paid),
        "currency": "142",
        "payTime": pay_time(prefix, index),
    }
    waybill = {
        "guid": _guid(rng),
        "appType": "1",
        "appTime": APP_TIME,
        "appStatus": "2",
        "logisticsCode": carrier["code"],
        "logisticsName": carrier["name"],
        "logisticsNo": f"WB{order_no}",
        "billNo": f"999-{index % 10**8:08d}",
        "orderNo": order_no,
        "freight": _money(freight),
        "insuredFee": "0",
        "currency": "142",
        "weight": str(weight),
        "packNo": 1,
        "goodsInfo": "、".join(f"{line['itemName']}×{line['qty']}" for line in lines)[:200],
        "consignee": person["name"],
        "consigneeAddress": person["address"],
        "consigneeTelephone": person["telephone"],
    }
    mismatch = None
    if rng.random() < mismatch_rate:
        mismatch = rng.choice(
            ("PAYMENT_AMOUNT_MISMATCH", "PAYER_NOT_BUYER", "CONSIGNEE_ADDRESS_MISMATCH", "CONSIGNEE_PHONE_MISMATCH")
        )
        if mismatch == "PAYMENT_AMOUNT_MISMATCH":
            payment["amountPaid"] = _money(paid - Decimal("6.00"))
        elif mismatch == "PAYER_NOT_BUYER":
            other = buyer(_buyer_key(prefix, index) + 500_000)
            payment |= {"payerIdNumber": other["id"], "payerName": other["name"], "telephone": other["telephone"]}
        elif mismatch == "CONSIGNEE_ADDRESS_MISMATCH":
            waybill["consigneeAddress"] = person["address"] + "(代收点)"
        else:
            waybill["consigneeTelephone"] = f"139{(index * 104729) % 10**8:08d}"
    return Purchase(index, order, payment, waybill, mismatch)


def _buyer_key(prefix: str, index: int) -> int:
    """Two consecutive purchases of a stream share a buyer; streams (prefixes) have buyers of their own."""
    stream = sum(ord(c) * 31**i for i, c in enumerate(prefix)) % 4000
    assert isinstance(stream, int)
    return stream * 100_000 + index // 2


# --- the document stream ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    doc_type: DocType
    sender: str  # the enterprise whose key sends it (the document's owner)
    body: dict[str, Any]
    purchase: int
    duplicate: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return self.doc_type, self.body[OWNER_FIELD[self.doc_type]], self.body[NUMBER_FIELD[self.doc_type]]


def _rng(seed: int, prefix: str, start: int) -> random.Random:
    return random.Random(f"{seed}:{prefix}:{start}")


def purchases(prefix: str, start: int, count: int, seed: int = 0) -> Iterator[Purchase]:
    rng = _rng(seed, prefix, start)
    for index in range(start, start + count):
        yield make_purchase(prefix, index, rng)


def document_stream(
    prefix: str,
    start: int,
    count: int,
    seed: int = 0,
    *,
    window: int = WINDOW,
    duplicate_rate: float = DUPLICATE_RATE,
) -> Iterator[Doc]:
    """The documents of ``count`` purchases: each window of purchases shuffled together, resends mixed in."""
    rng = _rng(seed, prefix, start)
    shuffle_rng = random.Random(rng.getrandbits(64))
    recent: list[Doc] = []
    batch: list[Purchase] = []
    for index in range(start, start + count):
        batch.append(make_purchase(prefix, index, rng))
        if len(batch) == window or index == start + count - 1:
            docs = [
                Doc(doc_type, _owner(doc_type, body), body, p.index)
                for p in batch
                for doc_type, body in p.documents().items()
            ]
            shuffle_rng.shuffle(docs)
            for doc in docs:
                yield doc
                recent.append(doc)
                if len(recent) > 400:
                    del recent[:100]
                if shuffle_rng.random() < duplicate_rate / (1 - duplicate_rate):
                    original = recent[shuffle_rng.randrange(len(recent))]
                    yield resend(original, shuffle_rng)
            batch = []


def _owner(doc_type: DocType, body: dict[str, Any]) -> str:
    return str(body[OWNER_FIELD[doc_type]])


def resend(doc: Doc, rng: random.Random) -> Doc:
    """The same document sent again, as platforms resend: a new guid, the same content (an idempotent replay)."""
    body = copy.deepcopy(doc.body)
    body["guid"] = _guid(rng)
    return Doc(doc.doc_type, doc.sender, body, doc.purchase, duplicate=True)


@dataclass
class Batch:
    doc_type: DocType
    sender: str
    docs: list[Doc] = field(default_factory=list)
    keys: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, doc: Doc) -> None:
        self.docs.append(doc)
        self.keys.add(doc.key)

    def json_body(self) -> dict[str, Any]:
        return {"items": [d.body for d in self.docs]}

    def xml_body(self) -> bytes:
        enterprise = next(e for e in ENTERPRISES if e["code"] == self.sender)
        return codec.render_message(self.doc_type, [d.body for d in self.docs], samples.transfer_for(enterprise))


def batches(docs: Iterable[Doc], size: int = BATCH_SIZE) -> Iterator[Batch]:
    """Group the stream by (type, sender) into batches of ``size``, in the order they fill (the last ones of
    each sender may be smaller).

    A resend never goes into a batch that holds the same key (it waits for the next batch of its sender), so
    every batch holds distinct keys, as a sender's batch would."""
    open_batches: dict[tuple[DocType, str], Batch] = {}
    waiting: dict[tuple[DocType, str], list[Doc]] = {}

    def fresh(slot: tuple[DocType, str], doc_type: DocType) -> Batch:
        batch = Batch(doc_type, slot[1])
        held = waiting.get(slot, [])
        for doc in list(held):
            if doc.key not in batch.keys and len(batch.docs) < size - 1:
                batch.add(doc)
                held.remove(doc)
        return batch

    for doc in docs:
        slot: tuple[DocType, str] = (doc.doc_type, doc.sender)
        current = open_batches.get(slot) or open_batches.setdefault(slot, fresh(slot, doc.doc_type))
        if doc.key in current.keys:
            waiting.setdefault(slot, []).append(doc)
            continue
        current.add(doc)
        if len(current.docs) == size:
            yield current
            open_batches[slot] = fresh(slot, doc.doc_type)
    for slot, batch in open_batches.items():
        while batch.docs:
            yield batch
            batch = fresh(slot, batch.doc_type)


# --- filing the parties ------------------------------------------------------------------------------------


async def file_everything(client: httpx.AsyncClient, admin_key: str) -> dict[str, str]:
    """File every enterprise and goods record through the admin API; the API key of each enterprise."""
    admin = {"X-API-Key": admin_key}
    keys: dict[str, str] = {}
    for enterprise in ENTERPRISES:
        response = await client.post("/api/v1/enterprises", json=enterprise, headers=admin)
        if response.status_code != 201:
            raise RuntimeError(f"filing {enterprise['code']}: {response.status_code} {response.text[:300]}")
        key = await client.post(f"/api/v1/enterprises/{enterprise['code']}/keys", json={}, headers=admin)
        if key.status_code != 201:
            raise RuntimeError(f"key of {enterprise['code']}: {key.status_code} {key.text[:300]}")
        keys[enterprise["code"]] = key.json()["key"]
    for seller, items in CATALOGUE.items():
        for item in items:
            response = await client.post("/api/v1/goods", json=item.goods_record(seller), headers=admin)
            if response.status_code != 201:
                raise RuntimeError(f"goods {item.item_no}: {response.status_code} {response.text[:300]}")
    return keys


# --- fraud mixed into the workload (docs/risk.md) ------------------------------------------------------------

FraudKind = Literal["ring", "bought_ids", "burst", "underpriced", "pay_ring"]
FRAUD_KINDS: tuple[FraudKind, ...] = ("ring", "bought_ids", "burst", "underpriced", "pay_ring")
# The rule meant to catch each kind.
TARGET_RULE = {"ring": "R1", "bought_ids": "R2", "burst": "R4", "underpriced": "R6", "pay_ring": "R7"}
RING_SIZE = 8  # 刷单: forged triples with bought IDs, goods funnelled to one address
BOUGHT_ID_USES = 6  # one bought ID shipped to this many addresses
BURST_SIZE = 7  # one ID buying this many times in a day, over both platforms
PAY_RING_SIZE = 15  # bought IDs, each shipping to an address of its own, paid by one script in one second


@dataclass
class LabelledPurchase:
    purchase: Purchase
    fraud: FraudKind | None
    group: int | None = None  # purchases of one scheme share a group


def _as_buyer(purchase: Purchase, person: dict[str, str], address: str | None = None) -> None:
    """Give the purchase another buyer (and consignee), consistently across its three documents."""
    address = address or person["address"]
    purchase.order |= {
        "buyerName": person["name"],
        "buyerIdNumber": person["id"],
        "buyerTelephone": person["telephone"],
        "buyerRegNo": person["regNo"],
        "consignee": person["name"],
        "consigneeTelephone": person["telephone"],
        "consigneeAddress": address,
    }
    purchase.payment |= {"payerIdNumber": person["id"], "payerName": person["name"], "telephone": person["telephone"]}
    purchase.waybill |= {
        "consignee": person["name"],
        "consigneeTelephone": person["telephone"],
        "consigneeAddress": address,
    }


def _scheme(kind: FraudKind, prefix: str, group: int, start: int, rng: random.Random) -> list[LabelledPurchase]:
    """One fraud scheme as the purchases it makes (each one matching, as a careful fraudster's would)."""
    base = 3_000_000 + group * 100  # buyers no normal purchase of any stream uses
    made: list[LabelledPurchase] = []
    if kind == "ring":
        drop = f"广东省深圳市南山区科技园南路{group % 97 + 1}号集运仓{group}室"
        collector = buyer(base + 99)["telephone"]  # the ring's goods go to one address and one telephone
        for k in range(RING_SIZE):
            purchase = make_purchase(prefix, start + k, rng, mismatch_rate=0)
            _as_buyer(purchase, buyer(base + k), address=drop)
            purchase.order["consigneeTelephone"] = purchase.waybill["consigneeTelephone"] = collector
            made.append(LabelledPurchase(purchase, kind, group))
    elif kind == "bought_ids":
        person = buyer(base)
        for k in range(BOUGHT_ID_USES):
            purchase = make_purchase(prefix, start + k, rng, mismatch_rate=0)
            _as_buyer(purchase, person, address=buyer(base + 50 + k)["address"])
            made.append(LabelledPurchase(purchase, kind, group))
    elif kind == "burst":
        person = buyer(base)
        for k in range(BURST_SIZE):
            purchase = make_purchase(prefix, start + k, rng, mismatch_rate=0)
            _as_buyer(purchase, person)
            platform = PLATFORMS[k % len(PLATFORMS)]
            purchase.order |= {"ebpCode": platform["code"], "ebpName": platform["name"]}
            purchase.payment |= {"ebpCode": platform["code"], "ebpName": platform["name"]}
            made.append(LabelledPurchase(purchase, kind, group))
    elif kind == "pay_ring":
        platform = PLATFORMS[group % len(PLATFORMS)]
        second = pay_time(f"{prefix}:ring", group)
        for k in range(PAY_RING_SIZE):
            purchase = make_purchase(prefix, start + k, rng, mismatch_rate=0)
            _as_buyer(purchase, buyer(base + k))
            purchase.order |= {"ebpCode": platform["code"], "ebpName": platform["name"]}
            purchase.payment |= {"ebpCode": platform["code"], "ebpName": platform["name"], "payTime": second}
            made.append(LabelledPurchase(purchase, kind, group))
    else:  # under-priced: the goods declared at 30 % of their price (tax evasion)
        purchase = make_purchase(prefix, start, rng, mismatch_rate=0, price_factor=Decimal("0.3"))
        _as_buyer(purchase, buyer(base))
        made.append(LabelledPurchase(purchase, kind, group))
    return made


def labelled_purchases(
    prefix: str, count: int, seed: int = 0, schemes_per_thousand: int = 4
) -> Iterator[LabelledPurchase]:
    """``count`` normal purchases with fraud schemes mixed in (about ``schemes_per_thousand`` per 1,000, the
    four kinds in turn), each labelled with the scheme it belongs to. Deterministic from (seed, prefix)."""
    rng = _rng(seed, prefix, 0)
    index, group = 0, 0
    every = max(1, 1000 // max(schemes_per_thousand, 1))
    for n in range(count):
        yield LabelledPurchase(make_purchase(prefix, index, rng, mismatch_rate=0), None)
        index += 1
        if n % every == every - 1:
            kind = FRAUD_KINDS[group % len(FRAUD_KINDS)]
            scheme = _scheme(kind, prefix, group, index, rng)
            index += len(scheme)
            group += 1
            yield from scheme
