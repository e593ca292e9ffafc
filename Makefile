# hyperplex: two commands on a fresh machine.
#   make demo   set up .venv (torch CPU first, the package, its compiled kernels) and run the demo pipeline
#   make test   set up .venv with dev + napari extras and the Debian packages napari needs, run the tests
#   make docs   build the documentation site (mkdocs-material + mkdocstrings, warnings as errors) into site/
#   make dist   build a wheel into dist/ (the package is not on an index: install that file, or from the repo)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install --quiet --progress-bar off
# EDITABLE=-e for development (default); CI sets EDITABLE= to test a real (non-editable) install.
EDITABLE ?= -e
APT_PKGS := xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0
DEMO_OUT ?= demo_out

.PHONY: demo test lint format bench clean apt docs dist

$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) torch==2.13.0
	touch $@

$(VENV)/.core: $(VENV)/.torch pyproject.toml
	$(PIP_INSTALL) $(EDITABLE) .
	$(PY) -m compileall -q common geo bio plugins  # bytecode, as a wheel install writes it (editable installs)
	touch $@

# The compiled kernels, cached on disk for every later process (the tests compile what they use themselves).
$(VENV)/.kernels: $(VENV)/.core
	$(PY) -c "from hyperplex.geo.methane.mag1c_filter.jit import warm_up; warm_up()"
	touch $@

$(VENV)/.dev: $(VENV)/.core
	$(PIP_INSTALL) $(EDITABLE) '.[dev,napari]'
	touch $@

apt:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	fi

demo: $(VENV)/.kernels
	$(VENV)/bin/hyperplex demo --out $(DEMO_OUT)

test: apt $(VENV)/.dev
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(VENV)/.kernels
	$(PY) benchmarks/methane_filters.py
	$(PY) benchmarks/models_scaling.py
	$(PY) benchmarks/emit_scene.py

docs: $(VENV)/.dev
	$(VENV)/bin/mkdocs build --strict

dist: $(VENV)/.core
	$(PY) -m pip wheel --no-deps --no-build-isolation -q -w dist .
	@ls dist/hyperplex-*.whl

clean:
	rm -rf $(VENV) build dist site *.egg-info $(DEMO_OUT)
