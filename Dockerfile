# syntax=docker/dockerfile:1
# Multi-stage: build the virtualenv with uv (pinned: the same uv that wrote uv.lock), run as a non-root user;
# `sw` is on the PATH (`docker compose exec api sw admin-key`); `sw serve` applies migrations before serving.

FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
ARG UV_VERSION=0.13.10
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /srv
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY app ./app
COPY migrations ./migrations
COPY alembic.ini ./
RUN uv sync --frozen --no-dev

FROM python:3.11-slim AS runtime
RUN groupadd --system sw && useradd --system --gid sw --home-dir /srv --no-create-home sw \
    && mkdir -p /srv/var && chown sw:sw /srv/var
WORKDIR /srv
COPY --from=build --chown=sw:sw /srv /srv
ENV PATH="/srv/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    SW_DATABASE_URL="sqlite+aiosqlite:////srv/var/single-window.db"
USER sw
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
# `sw serve` applies migrations, then starts uvicorn. For PostgreSQL set SW_DATABASE_URL=postgresql+asyncpg://…
# (compose.yaml runs it in production mode with a matcher and a dispatcher beside it).
CMD ["sw", "serve", "--host", "0.0.0.0", "--port", "8000"]
