"""SQLAlchemy tables, one module per concept. Importing this package registers them all."""

from app.models.base import Base
from app.models.document import Document, RawMessage
from app.models.enterprise import ApiKey, Delegation, Enterprise
from app.models.match_record import MatchRecord, RecordEvent

__all__ = [
    "ApiKey",
    "Base",
    "Delegation",
    "Document",
    "Enterprise",
    "MatchRecord",
    "RawMessage",
    "RecordEvent",
]
