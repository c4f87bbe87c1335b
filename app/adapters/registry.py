"""Which adapter serves which agency, built from settings — never an edit to the core.

Order of precedence for an agency's class: ``SW_AGENCY_ADAPTERS`` (``{"customs": "pkg.module:Class"}``),
then an entry point of the group ``singlewindow.adapters`` named after the agency, then the built-in class.
An agency without a URL in ``SW_AGENCY_URLS`` talks to the mock agencies mounted in this process.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import httpx

from app.adapters.base import AgencyAdapter
from app.config import Settings

BUILT_IN = {
    "customs": "app.adapters.customs:CustomsAdapter",
    "inspection": "app.adapters.inspection:InspectionAdapter",
    "tax": "app.adapters.tax:TaxAdapter",
    "fx": "app.adapters.fx:FxAdapter",
}
ENTRY_POINT_GROUP = "singlewindow.adapters"
EMBEDDED_BASE = "http://embedded"


def load_class(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@functools.cache
def installed_adapters() -> dict[str, EntryPoint]:
    """The adapters installed packages declare, read once per process: the lookup scans every installed
    distribution's metadata (about 25 ms), and what is installed does not change while the process runs."""
    return {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}


def adapter_class(agency: str, configured: Mapping[str, str]) -> Any:
    if agency in configured:
        return load_class(configured[agency])
    if agency in installed_adapters():
        return installed_adapters()[agency].load()
    if agency in BUILT_IN:
        return load_class(BUILT_IN[agency])
    raise LookupError(f"no adapter for agency {agency!r}: set SW_AGENCY_ADAPTERS or install an entry point")


def agency_base_url(agency: str, settings: Settings) -> str:
    return settings.agency_urls.get(agency, f"{EMBEDDED_BASE}/mock/{agency}")


def build_adapters(
    agencies: list[str], settings: Settings, remote: httpx.AsyncClient, embedded: httpx.AsyncClient
) -> dict[str, AgencyAdapter]:
    """One adapter per agency; ``remote`` for configured URLs, ``embedded`` (in-process mocks) otherwise."""
    adapters: dict[str, AgencyAdapter] = {}
    for agency in agencies:
        cls = adapter_class(agency, settings.agency_adapters)
        client = remote if agency in settings.agency_urls else embedded
        adapters[agency] = cls(agency, client, agency_base_url(agency, settings))
    return adapters
