from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class StatsRollupColumns:
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    metric: Mapped[str] = mapped_column(String(24), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    ebp_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    ebc_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    trade_mode: Mapped[str] = mapped_column(String(8), primary_key=True)
    port_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_e5: Mapped[int] = mapped_column(BigInteger, default=0)


class StatsRollup(StatsRollupColumns, Base):
    """统计监测: counters by hour, metric and code, platform, seller, trade mode and port ('' where unknown).

    Kept current in the transactions that change the records (app/services/rollups.py); ``sw stats rebuild``
    recomputes them. ``n`` counts purchases or documents; ``amount_e5`` sums tax in 1/100,000 yuan.
    """

    __tablename__ = "stats_rollup"
    __table_args__ = (
        Index("ix_stats_rollup_metric_hour", "metric", "hour"),
        # A seller's figures over a long period: that seller's cells alone, not every seller's of the period.
        Index("ix_stats_rollup_seller_metric_hour", "ebc_code", "metric", "hour"),
    )


class StatsRollupDaily(StatsRollupColumns, Base):
    """The same counters by UTC day (``hour`` is the day's 00:00) and without the seller: a few cells per day
    and platform, for long periods; kept and rebuilt with the hourly ones (app/rules/rollups.py ``daily``)."""

    __tablename__ = "stats_rollup_daily"
    __table_args__ = (Index("ix_stats_rollup_daily_metric_hour", "metric", "hour"),)
