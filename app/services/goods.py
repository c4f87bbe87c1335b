"""Goods records (商品备案): filing, reading and the lookups used by matching and declaration.

Services flush; the request's unit of work commits.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Select, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.models import Enterprise, Goods
from app.schemas.goods import GoodsCreate, GoodsList, GoodsOut, GoodsPatch
from app.services.auth import Principal

SELLER = "seller"


async def load_goods(session: AsyncSession, ebc_code: str, item_nos: Iterable[str | None]) -> dict[str, Goods]:
    """The filed goods of seller ``ebc_code`` among ``item_nos``, by item number."""
    wanted = {n for n in item_nos if n}
    if not wanted:
        return {}
    rows = await session.scalars(select(Goods).where(Goods.ebc_code == ebc_code, Goods.item_no.in_(wanted)))
    return {row.item_no: row for row in rows}


# --- who may file -----------------------------------------------------------------------------


def _require_writer(principal: Principal) -> None:
    if principal.kind == "official":
        raise Forbidden("Officials have read-only access", code="READ_ONLY_PRINCIPAL")


def require_filer(principal: Principal, ebc_code: str) -> None:
    """Admins, or the seller itself (active); officials read only; another enterprise may not."""
    _require_writer(principal)
    if principal.kind == "admin":
        return
    if principal.enterprise_code != ebc_code:
        raise Forbidden(
            f"Enterprise {principal.enterprise_code} may not file goods of {ebc_code}",
            code="NOT_AUTHORISED_FOR_ENTERPRISE",
        )
    principal.require_active()


async def _check_seller(session: AsyncSession, ebc_code: str) -> None:
    enterprise = await session.get(Enterprise, ebc_code)
    if enterprise is None:
        raise Unprocessable(
            f"Enterprise {ebc_code} is not filed",
            code="ENTERPRISE_NOT_FILED",
            errors=[{"path": "ebcCode", "code": ebc_code, "message": f"enterprise {ebc_code} is not filed"}],
        )
    if SELLER not in enterprise.roles:
        raise Unprocessable(
            f"Enterprise {ebc_code} is not filed as a seller",
            code="ENTERPRISE_ROLE_MISSING",
            errors=[{"path": "ebcCode", "code": ebc_code, "message": f"enterprise {ebc_code} is not filed as seller"}],
        )


# --- filing and changes -----------------------------------------------------------------------


async def create_goods(session: AsyncSession, principal: Principal, data: GoodsCreate) -> Goods:
    require_filer(principal, data.ebcCode)
    await _check_seller(session, data.ebcCode)
    exists = Conflict(f"Goods {data.ebcCode}/{data.itemNo} are already filed", code="GOODS_EXISTS")
    if await session.get(Goods, (data.ebcCode, data.itemNo)) is not None:
        raise exists
    now = utcnow()
    goods = Goods(
        ebc_code=data.ebcCode,
        item_no=data.itemNo,
        gcode=data.gcode,
        gname=data.gname,
        unit1=data.unit1,
        qty1_factor=data.qty1Factor,
        unit2=data.unit2,
        qty2_factor=data.qty2Factor,
        country=data.country,
        vat_rate=data.vatRate,
        consumption_tax_rate=data.consumptionTaxRate,
        positive_list=data.positiveList,
        created_at=now,
        updated_at=now,
    )
    session.add(goods)
    try:
        await session.flush()
    except IntegrityError as exc:  # filed by a concurrent request between our read and our insert
        raise exists from exc
    return goods


_COLUMNS = {
    "gcode": "gcode",
    "gname": "gname",
    "unit1": "unit1",
    "qty1Factor": "qty1_factor",
    "unit2": "unit2",
    "qty2Factor": "qty2_factor",
    "country": "country",
    "vatRate": "vat_rate",
    "consumptionTaxRate": "consumption_tax_rate",
    "positiveList": "positive_list",
}


async def patch_goods(
    session: AsyncSession, principal: Principal, ebc_code: str, item_no: str, patch: GoodsPatch
) -> Goods:
    _require_writer(principal)
    goods = await get_goods(session, principal, ebc_code, item_no)  # another enterprise's goods: 404
    require_filer(principal, ebc_code)
    await _check_seller(session, ebc_code)
    for name in patch.model_fields_set:
        setattr(goods, _COLUMNS[name], getattr(patch, name))
    goods.updated_at = utcnow()
    await session.flush()
    return goods


# --- reading ----------------------------------------------------------------------------------


async def get_goods(session: AsyncSession, principal: Principal, ebc_code: str, item_no: str) -> Goods:
    """Admins and officials read every goods record; an enterprise its own (others are 404)."""
    goods = None
    if principal.reads_everything or principal.enterprise_code == ebc_code:
        goods = await session.get(Goods, (ebc_code, item_no))
    if goods is None:
        raise NotFound(f"No goods {ebc_code}/{item_no}", code="GOODS_NOT_FOUND")
    return goods


@dataclass(frozen=True)
class GoodsFilter:
    ebc_code: str | None = None
    item_no: str | None = None
    gcode: str | None = None  # the HS code or its leading digits (e.g. "3304")


def _filtered(principal: Principal, f: GoodsFilter) -> Select[Goods]:
    query = select(Goods)
    if not principal.reads_everything:
        query = query.where(Goods.ebc_code == (principal.enterprise_code or ""))
    if f.ebc_code is not None:
        query = query.where(Goods.ebc_code == f.ebc_code)
    if f.item_no is not None:
        query = query.where(Goods.item_no == f.item_no)
    if f.gcode is not None:
        query = query.where(Goods.gcode.startswith(f.gcode, autoescape=True))
    return query


def encode_cursor(goods: Goods) -> str:
    raw = json.dumps([goods.ebc_code, goods.item_no], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ebc_code, item_no = json.loads(raw)
        if not isinstance(ebc_code, str) or not isinstance(item_no, str):
            raise TypeError("not a pair of strings")
        return ebc_code, item_no
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise Unprocessable("The cursor is not one this service issued", code="INVALID_CURSOR") from exc


async def list_goods(
    session: AsyncSession, principal: Principal, f: GoodsFilter, limit: int, cursor: str | None
) -> GoodsList:
    """In (ebcCode, itemNo) order; follow ``nextCursor`` for the next page."""
    query = _filtered(principal, f)
    if cursor:
        query = query.where(tuple_(Goods.ebc_code, Goods.item_no) > tuple_(*decode_cursor(cursor)))
    rows = list(await session.scalars(query.order_by(Goods.ebc_code, Goods.item_no).limit(limit + 1)))
    page = rows[:limit]
    return GoodsList(
        items=[goods_out(g) for g in page],
        nextCursor=encode_cursor(page[-1]) if len(rows) > limit else None,
    )


def goods_out(goods: Goods) -> GoodsOut:
    return GoodsOut(
        ebcCode=goods.ebc_code,
        itemNo=goods.item_no,
        gcode=goods.gcode,
        gname=goods.gname,
        unit1=goods.unit1,
        qty1Factor=goods.qty1_factor,
        unit2=goods.unit2,
        qty2Factor=goods.qty2_factor,
        country=goods.country,
        vatRate=goods.vat_rate,
        consumptionTaxRate=goods.consumption_tax_rate,
        positiveList=goods.positive_list,
        createdAt=goods.created_at,
        updatedAt=goods.updated_at,
    )
