"""The mock tax agency computes tax on its own (app/mock_agencies/rules/tax.py, from the published rule), so it
can disagree with the application: it must not import the application's rules, it must get the half-cent cases
right by itself, and on the benchmark's workload it must agree with the application to the cent."""

from __future__ import annotations

import ast
import copy
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.mock_agencies import rules
from app.rules.inventory import DeclarationParty, GoodsRecord, compose_inventory
from app.rules.matching import GoodsFacts, assess_order
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn
from app.services.declaration import tax_view
from bench import workload
from tests.mock_agencies.packages import package
from tests.rules.test_tax import HALF_CENT_CASES

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
MOCK_AGENCIES = Path(__file__).resolve().parents[2] / "app" / "mock_agencies"


def test_the_mock_agencies_import_nothing_of_the_applications_rules() -> None:
    for path in MOCK_AGENCIES.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not any(n == "app.rules" or n.startswith("app.rules.") for n in names), (path, names)


def _bill(decision: rules.AgencyDecision) -> dict[str, Any]:
    assert [r.return_status for r in decision.receipts] == ["120"], decision.receipts
    assert decision.tax_bill is not None
    return decision.tax_bill


@pytest.mark.parametrize("case", list(HALF_CENT_CASES))
def test_the_agency_rounds_half_a_cent_up_per_line_on_its_own(case: str) -> None:
    lines, freight, per_line, (vat, consumption, total) = HALF_CENT_CASES[case]
    inventory_lines = [
        {"gnum": gnum, "itemNo": f"ITEM{gnum}", "gcode": "3304990099", "totalPrice": value}
        for gnum, (value, _vat, _consumption) in enumerate(lines, start=1)
    ]
    goods = [
        {"itemNo": f"ITEM{gnum}", "gcode": "3304990099", "vatRate": rate, "consumptionTaxRate": consumption_rate}
        for gnum, (_value, rate, consumption_rate) in enumerate(lines, start=1)
    ]
    body = package("tax", inventory={"inventoryList": inventory_lines, "freight": freight}, goods=goods)
    bill = _bill(rules.tax_decision(body, Decimal(0), NOW))
    assert [(line["valueAddedTax"], line["consumptionTax"]) for line in bill["taxListRd"]] == per_line
    head = bill["taxHeadRd"]
    assert (head["valueAddedTax"], head["consumptionTax"], head["taxTotal"]) == (vat, consumption, total)


PURCHASES = 3000
ITEMS = {item.item_no: item for items in workload.CATALOGUE.values() for item in items}


def _goods_record(item: workload.Item) -> GoodsRecord:
    return GoodsRecord(
        item_no=item.item_no,
        gcode=item.gcode,
        gname=item.name,
        unit1=item.unit1,
        qty1_factor=Decimal(item.qty1_factor),
        unit2=item.unit2,
        qty2_factor=Decimal(item.qty2_factor) if item.qty2_factor is not None else None,
        country=item.country,
        positive_list=True,
    )


def test_the_agency_and_the_application_agree_on_the_workload() -> None:
    """Every purchase of the benchmark stream (several lines, freight, both kinds of goods): the application's
    tax (what the declaration carries) and the agency's own assessment of the package agree line by line."""
    party = DeclarationParty("3120960A02", "agent", "3120960A02", "1501", "1501", "9610", "5", "CA1234", "20261111")
    compared = disagreements = 0
    for purchase in workload.purchases("TAXCHECK", 0, PURCHASES):
        order = OrderIn.model_validate(purchase.order)
        waybill = WaybillIn.model_validate(purchase.waybill)
        items = {line.itemNo or "": ITEMS[line.itemNo or ""] for line in order.orderList}
        facts = {k: GoodsFacts(k, i.vat_rate, i.consumption_tax_rate) for k, i in items.items()}
        assessment = assess_order(order, facts, waybill)
        declared = tax_view(assessment)
        inventory = compose_inventory(
            guid="G",
            cop_no="C",
            app_time=workload.APP_TIME,
            decl_date=workload.APP_TIME[:8],
            order=order,
            payment=PaymentIn.model_validate(purchase.payment),
            waybill=waybill,
            goods={k: _goods_record(i) for k, i in items.items()},
            party=party,
        ).inventory
        body = {
            "recordId": f"R{purchase.order['orderNo']}",
            "inventory": inventory,
            "tax": copy.deepcopy(declared),
            "goods": [i.goods_record(order.ebcCode) for i in items.values()],
        }
        decision = rules.tax_decision(body, Decimal(0), NOW, Decimal("1e9"), Decimal("1e9"))
        bill = _bill(decision)
        head = bill["taxHeadRd"]
        agency = {
            "taxTotal": head["taxTotal"],
            "valueAddedTax": head["valueAddedTax"],
            "consumptionTax": head["consumptionTax"],
            "dutiableValue": head["dutiableValue"],
            "lines": [(line["gnum"], line["valueAddedTax"], line["consumptionTax"]) for line in bill["taxListRd"]],
        }
        ours = {k: declared[k] for k in ("taxTotal", "valueAddedTax", "consumptionTax", "dutiableValue")} | {
            "lines": [(line["gnum"], line["valueAddedTax"], line["consumptionTax"]) for line in declared["lines"]]
        }
        compared += 1
        disagreements += agency != ours or head["note"] != ""
        assert agency == ours, (purchase.order["orderNo"], ours, agency)
        assert head["note"] == "", head["note"]
    assert (compared, disagreements) == (PURCHASES, 0)
