"""SQLAlchemy tables, one module per concept. Importing this package registers them all."""

from app.models.audit import AuditEntry
from app.models.base import Base, table_of
from app.models.certificate import Certificate
from app.models.declaration import AgencyReceipt, Declaration, Dispatch, DispatchAttempt, Goods
from app.models.document import Document, RawMessage
from app.models.enterprise import ApiKey, Delegation, Enterprise
from app.models.inventory_request import InventoryRequest
from app.models.match_record import MatchRecord, RecordEvent
from app.models.retention import PrunedPurchase
from app.models.risk import Complaint, CreditAssessment, RiskCount, RiskLink, RiskWarning, SupervisionProfileRow
from app.models.stats import StatsRollup, StatsRollupDaily
from app.models.submission import Submission
from app.models.subscription import FeedCursor, Subscription, WebhookAttempt, WebhookDelivery

__all__ = [
    "AgencyReceipt",
    "ApiKey",
    "AuditEntry",
    "Base",
    "Certificate",
    "Complaint",
    "CreditAssessment",
    "Declaration",
    "Delegation",
    "Dispatch",
    "DispatchAttempt",
    "Document",
    "Enterprise",
    "FeedCursor",
    "Goods",
    "InventoryRequest",
    "MatchRecord",
    "PrunedPurchase",
    "RawMessage",
    "RecordEvent",
    "RiskCount",
    "RiskLink",
    "RiskWarning",
    "StatsRollup",
    "StatsRollupDaily",
    "Submission",
    "Subscription",
    "SupervisionProfileRow",
    "WebhookAttempt",
    "WebhookDelivery",
    "table_of",
]
