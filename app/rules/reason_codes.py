"""The catalogue of matching reason codes: one place, read by the rules, the docs and OpenAPI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ReasonCode:
    code: str
    severity: Severity
    documents: tuple[str, ...]
    field: str
    zh: str
    en: str
    spec: str = ""


REASON_CODES: dict[str, ReasonCode] = {
    rc.code: rc
    for rc in (
        ReasonCode(
            "ORDER_AMOUNT_FORMULA",
            "error",
            ("order",),
            "acturalPaid",
            "订单实际支付金额不等于 商品价格+运杂费+代扣税款-非现金抵扣金额",
            "Order acturalPaid is not goodsValue + freight + taxTotal − discount",
            "CEB311 acturalPaid note",
        ),
        ReasonCode(
            "ORDER_LINE_TOTAL",
            "error",
            ("order",),
            "orderList[n].totalPrice",
            "订单商品总价不等于 单价×数量",
            "Order line totalPrice is not price × qty",
            "CEB311 totalPrice note",
        ),
        ReasonCode(
            "ORDER_GOODS_VALUE",
            "error",
            ("order",),
            "goodsValue",
            "订单商品价格不等于各商品行总价之和",
            "Order goodsValue is not the sum of the lines' totalPrice",
        ),
        ReasonCode(
            "ORDER_LINE_NUMBERING",
            "error",
            ("order",),
            "orderList[n].gnum",
            "订单商品序号须从1开始连续编号",
            "Order line numbers (gnum) must run 1..n",
            "-301002",
        ),
        ReasonCode(
            "PAYMENT_AMOUNT_MISMATCH",
            "error",
            ("order", "payment"),
            "amountPaid",
            "支付单支付金额与订单实际支付金额不一致",
            "Payment amountPaid differs from the order's acturalPaid",
        ),
        ReasonCode(
            "PAYER_NOT_BUYER",
            "error",
            ("order", "payment"),
            "payerIdNumber | payerName",
            "支付人与订购人不一致",
            "The payer is not the buyer (ID number or name differs)",
            "海关总署公告2016年第26号",
        ),
        ReasonCode(
            "PAYMENT_REFERENCE_MISMATCH",
            "error",
            ("order", "payment"),
            "payCode | payTransactionId",
            "订单所填支付企业或支付交易编号与支付单不一致",
            "The order names another payment enterprise or payment transaction id",
        ),
        ReasonCode(
            "MULTIPLE_PAYMENTS",
            "error",
            ("payment",),
            "orderNo",
            "同一订单匹配到多张支付单",
            "More than one payment is linked to this order",
            "-401003",
        ),
        ReasonCode(
            "MULTIPLE_WAYBILLS",
            "error",
            ("waybill",),
            "orderNo",
            "同一订单匹配到多张运单",
            "More than one waybill is linked to this order",
        ),
        ReasonCode(
            "CONSIGNEE_NAME_MISMATCH",
            "error",
            ("order", "waybill"),
            "consignee",
            "运单收货人与订单收货人不一致",
            "Waybill consignee differs from the order's consignee",
        ),
        ReasonCode(
            "CONSIGNEE_PHONE_MISMATCH",
            "error",
            ("order", "waybill"),
            "consigneeTelephone",
            "运单收货人电话与订单不一致",
            "Waybill consigneeTelephone differs from the order's",
        ),
        ReasonCode(
            "CONSIGNEE_ADDRESS_MISMATCH",
            "error",
            ("order", "waybill"),
            "consigneeAddress",
            "运单收货地址与订单不一致",
            "Waybill consigneeAddress differs from the order's",
        ),
        ReasonCode(
            "CURRENCY_NOT_CNY",
            "error",
            ("order", "payment", "waybill"),
            "currency",
            "币制必须为人民币(142)",
            "Currency must be 142 (CNY) on retail import",
        ),
        ReasonCode(
            "WAYBILL_AMBIGUOUS",
            "error",
            ("waybill",),
            "ebpCode",
            "运单订单编号对应多个电商平台的订单,无法确定归属;请在运单中补充 ebpCode",
            "The waybill's orderNo matches orders of several platforms; send it again with ebpCode",
        ),
        ReasonCode(
            "GOODS_NOT_FILED",
            "error",
            ("order",),
            "orderList[n].itemNo",
            "订单商品未在电商企业名下备案(商品备案)",
            "The order line's item has no goods record (商品备案) under the seller (ebcCode, itemNo)",
        ),
        ReasonCode(
            "BUYER_ID_INVALID",
            "error",
            ("order",),
            "buyerIdNumber",
            "订购人身份证件号码不符合GB 11643(校验码或出生日期错误)",
            "The buyer's resident ID number fails GB 11643 (check digit or birth date)",
            "GB 11643-1999",
        ),
        ReasonCode(
            "TELEPHONE_INVALID",
            "error",
            ("order",),
            "buyerTelephone | consigneeTelephone",
            "电话号码不是有效的手机号码或带区号的固定电话",
            "The telephone is neither a mainland mobile number nor a landline with its area code",
        ),
        ReasonCode(
            "TAX_TOTAL_MISMATCH",
            "warning",
            ("order",),
            "taxTotal",
            "订单代扣税款与按跨境电商综合税计算的税额不一致",
            "The order's taxTotal differs from the cross-border tax computed from the goods records",
        ),
    )
}
