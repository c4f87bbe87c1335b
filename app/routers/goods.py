"""Goods records (商品备案): a seller files each item once; matching and the inventory read them."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response, status
from fastapi.routing import APIRoute

from app.deps import PrincipalDep, SessionDep, SettingsDep
from app.errors import MalformedBody
from app.schemas.goods import EXAMPLE_GOODS, GoodsCreate, GoodsList, GoodsOut, GoodsPatch
from app.schemas.problems import problems
from app.services import audit
from app.services import goods as service
from app.services.goods import GoodsFilter
from app.services.intake import parse_json


class _ExactJsonRequest(Request):
    """Reads JSON numbers as exact Decimals (never through float), like document intake."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json(await self.body())
            except MalformedBody as exc:
                # FastAPI turns a JSONDecodeError into its json_invalid error, answered as MALFORMED_BODY.
                raise json.JSONDecodeError(exc.detail, "", 0) from exc
        return self._json


class ExactJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_json_handler(request: Request) -> Response:
            return await handler(_ExactJsonRequest(request.scope, request.receive))

        return exact_json_handler


router = APIRouter(prefix="/api/v1/goods", tags=["Goods records (商品备案)"], route_class=ExactJsonRoute)

EbcCodePath = Annotated[str, Path(max_length=18, description="The seller's enterprise code")]
ItemNoPath = Annotated[str, Path(max_length=30, description="The seller's item number (may contain `/`)")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=GoodsOut,
    summary="File a goods record (the seller itself, or an admin)",
    description="One record per (`ebcCode`, `itemNo`): the item's HS code, legal units, origin, tax rates and "
    "positive-list flag. Every order line's `itemNo` must be filed under the order's seller (`ebcCode`) for "
    "the purchase to match (`GOODS_NOT_FILED`), and the order's `taxTotal` is checked against the tax these "
    "rates give (`TAX_TOTAL_MISMATCH`, a warning). The caller is the seller (filed with role `seller`) or an "
    "admin; officials read only. Decimals may be JSON numbers or strings and are read exactly.",
    responses=problems(400, 401, 403, 409, 413, 422, 503),
    operation_id="create_goods",
)
async def create_goods(
    data: Annotated[
        GoodsCreate,
        Body(
            openapi_examples={
                "serum": {
                    "summary": "The example order's item: a cosmetic (VAT 13 %, consumption tax 15 %)",
                    "value": EXAMPLE_GOODS,
                },
                "one legal unit": {
                    "summary": "An item whose HS code has no second legal unit",
                    "value": {k: v for k, v in EXAMPLE_GOODS.items() if k not in ("unit2", "qty2Factor")}
                    | {"itemNo": "JP-SSD-50-REFILL", "gname": "资生堂红腰子精华液 补充装 50ml"},
                },
            }
        ),
    ],
    session: SessionDep,
    principal: PrincipalDep,
) -> GoodsOut:
    filed = service.goods_out(await service.create_goods(session, principal, data))
    await audit.record_act(session, principal, "goods.filed", "goods", f"{filed.ebcCode}/{filed.itemNo}", after=filed)
    return filed


@router.get(
    "",
    response_model=GoodsList,
    summary="Find goods records (an enterprise sees its own)",
    description="Filters combine with AND; `gcode` matches the HS code or its leading digits (`3304`). "
    "Ordered by (`ebcCode`, `itemNo`); follow `nextCursor` for the next page.",
    responses=problems(401, 422, 503),
    operation_id="list_goods",
)
async def list_goods(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    ebcCode: Annotated[str | None, Query(max_length=18)] = None,
    itemNo: Annotated[str | None, Query(max_length=30)] = None,
    gcode: Annotated[str | None, Query(pattern=r"^\d{1,10}$", description="HS code or its leading digits")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> GoodsList:
    goods_filter = GoodsFilter(ebc_code=ebcCode, item_no=itemNo, gcode=gcode)
    return await service.list_goods(session, principal, goods_filter, min(limit, settings.page_size_max), cursor)


@router.get(
    "/{ebcCode}/{itemNo:path}",
    response_model=GoodsOut,
    summary="Read one goods record",
    description="Admins and officials read every record; an enterprise its own (another's is 404).",
    responses=problems(401, 404, 422, 503),
    operation_id="get_goods",
)
async def get_goods(ebcCode: EbcCodePath, itemNo: ItemNoPath, session: SessionDep, principal: PrincipalDep) -> GoodsOut:
    return service.goods_out(await service.get_goods(session, principal, ebcCode, itemNo))


@router.patch(
    "/{ebcCode}/{itemNo:path}",
    response_model=GoodsOut,
    summary="Change a goods record (the seller itself, or an admin)",
    description="Absent fields stay as they are. `unit2` and `qty2Factor` change together (both `null` removes "
    "the second unit). Existing match records are not re-evaluated by a change to a goods record; a record "
    "is checked again when one of its documents changes.",
    responses=problems(400, 401, 403, 404, 413, 422, 503),
    operation_id="patch_goods",
)
async def patch_goods(
    ebcCode: EbcCodePath,
    itemNo: ItemNoPath,
    patch: Annotated[
        GoodsPatch,
        Body(
            openapi_examples={
                "rates": {
                    "summary": "New tax rates",
                    "value": {"vatRate": "0.13", "consumptionTaxRate": "0.15"},
                },
                "off the positive list": {"summary": "Taken off the positive list", "value": {"positiveList": False}},
                "no second unit": {
                    "summary": "Remove the second legal unit",
                    "value": {"unit2": None, "qty2Factor": None},
                },
            }
        ),
    ],
    session: SessionDep,
    principal: PrincipalDep,
) -> GoodsOut:
    before = service.goods_out(await service.get_goods(session, principal, ebcCode, itemNo))
    after = service.goods_out(await service.patch_goods(session, principal, ebcCode, itemNo, patch))
    await audit.record_act(
        session, principal, "goods.changed", "goods", f"{ebcCode}/{itemNo}", before=before, after=after
    )
    return after
