# The two commands the README promises: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint format clean messages compilemessages

# The one catalogue (locale/zh_Hans/LC_MESSAGES/django.po) is written with exactly these flags
# (tests/i18n/catalogue.py runs the same to prove every marked string is in it).
MAKEMESSAGES_FLAGS := -l zh_Hans --no-location --no-wrap --no-obsolete -i ".venv/*" \
	-i "cloudsim/*" -i "tests/*" -i "benchmarks/*" -i "cli/*" -i "var/*" -i "staticfiles/*"
COMPILEMESSAGES_FLAGS := -l zh_Hans -i .venv -i var -i cloudsim -i staticfiles -i test-artifacts

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

## Run the whole product embedded: web, worker, beat and cloudsim, with demo data.
run: $(VENV)/.installed-run
	DEBUG=1 $(BIN)/python manage.py compilemessages $(COMPILEMESSAGES_FLAGS) -v 0
	$(BIN)/python -m demo.embedded

## Extract every marked string into the zh-hans catalogue (needs gettext's xgettext/msgmerge).
messages: $(VENV)/.installed-run
	DEBUG=1 $(BIN)/python manage.py makemessages $(MAKEMESSAGES_FLAGS)

## Compile the catalogue into locale/zh_Hans/LC_MESSAGES/django.mo (not in git).
compilemessages: $(VENV)/.installed-run
	DEBUG=1 $(BIN)/python manage.py compilemessages $(COMPILEMESSAGES_FLAGS)

# Test processes side by side (pytest-xdist), each with services of its own
# (tests/fixtures/workers.py); PYTEST_WORKERS=0 runs the suite in this one process.
PYTEST_WORKERS ?= auto

## Run the whole test suite: lint, Django checks, unit, integration and browser tests.
test: $(VENV)/.installed-dev
	DEBUG=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf var staticfiles test-artifacts
