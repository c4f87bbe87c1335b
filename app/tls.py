"""The TLS context every outbound HTTP client of the process shares.

Building one reads the whole CA bundle (about 50 ms of CPU each time); the service builds clients at every start
of an app, a worker or a delivery loop, so it builds the context once. httpx's own default is used (certifi's
bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), so nothing changes in what is trusted."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
