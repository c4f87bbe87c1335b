# The two README commands: `make run` and `make test`. Everything else is optional.
UV := ./scripts/uv
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run admin-key test lint format typecheck migrate openapi docs check bench-xml bench bench-quick bench-stats soak soak-quick mutations mutation

run: ## start the service in embedded mode (SQLite file under var/, migrations applied)
	$(UV) sync --frozen --no-dev
	$(UV) run --frozen --no-dev sw serve --host $(HOST) --port $(PORT)

admin-key: ## print a new admin key for the database `make run` serves (run it in this folder; says which database)
	$(UV) run --frozen --no-dev sw admin-key

test: ## the whole test suite (SQLite by default; SW_TEST_DATABASE_URL=postgresql+asyncpg://… for PostgreSQL)
	$(UV) sync --frozen
	$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: ## ruff lint + format check, mypy strict on app/
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

format:
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

migrate:
	$(UV) run --frozen sw migrate

openapi: ## regenerate openapi/openapi.json and docs/reason-codes.md from the app
	$(UV) run --frozen sw openapi
	$(UV) run --frozen sw docs

bench-xml: ## CEB XML codec: messages/s and records/s per core, single-order and 100-order messages
	$(UV) run --frozen python -m bench.xml_codec

PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

mutations: ## break guarded code on purpose (tests/mutations.py), run its tests, refresh the table in docs/testing.md
	$(UV) sync --frozen
	$(UV) run --frozen python -m tests.mutations --write

mutation: ## mutmut over the pure rules (app/rules/, the lifecycle table): score and survivors; fails under 90 % or on a survivor not listed as equivalent
	$(UV) sync --frozen
	$(UV) run --frozen python -m tests.mutation_score

soak: ## reliability suites at full size on PostgreSQL (minutes); prints the figures table, refreshes docs/reliability.md
	$(UV) sync --frozen
	SW_SOAK=full PG_ADMIN_URL=$(PG_ADMIN_URL) $(UV) run --frozen python -m tests.soak.run

soak-quick: ## the same suites at reduced sizes (CI)
	$(UV) sync --frozen
	SW_SOAK=quick PG_ADMIN_URL=$(PG_ADMIN_URL) $(UV) run --frozen python -m tests.soak.run

bench: ## full benchmark (minutes): service vs bare baselines, dispatcher, latency, scale curve to 1 M stored, SQLite
	$(UV) sync --frozen
	PG_ADMIN_URL=$(PG_ADMIN_URL) $(UV) run --frozen python -m bench.run

bench-stats: ## statistics: sw stats rebuild time and each stats endpoint's answer time (PURCHASES=20000, URL= for PostgreSQL)
	$(UV) run --frozen python -m bench.stats --purchases $(or $(PURCHASES),20000) $(if $(URL),--url $(URL))

bench-quick: ## the same shape, small (≈ 5 minutes); ends with one JSON line of the headline figures
	$(UV) sync --frozen
	PG_ADMIN_URL=$(PG_ADMIN_URL) $(UV) run --frozen python -m bench.run --quick
