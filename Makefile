# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create the virtual environment on first use; torch is pinned to the CPU build
# that an unpinned spec would replace with a multi-GB CUDA download.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test venv bench clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The embedded demo study: every task and ablation, scoring, tables, figures and the HTML report.
demo: $(STAMP)
	@start=$$(date +%s); \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" snakemake all --cores 2 --configfile config/demo.yaml && \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" snakemake --cores 1 --configfile config/demo.yaml \
		--report results/demo/report.html && \
	echo "demo study finished in $$(( $$(date +%s) - start )) s: see results/demo/README.md and results/demo/report.html"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/model_step.py

clean-venv:
	rm -rf $(VENV)
