# The two commands of the README. Both install what they need first.
.PHONY: start test lint

start:
	@scripts/bootstrap.sh run
	@.venv/bin/kumohub-local

test:
	@scripts/bootstrap.sh test
	@scripts/run-tests.sh

lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .
