# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create the virtual environment on first use; torch is pinned to the CPU build
# that an unpinned spec would replace with a multi-GB CUDA download.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test venv bench clean-venv real-study

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
	$(PY) -m mprnet.report.gains results/demo/summary.csv && \
	echo "demo study finished in $$(( $$(date +%s) - start )) s: see results/demo/README.md and results/demo/report.html"

# The Rain100L study on real images (config/rain100l.yaml; README, "Real images"). REALDATA=DIR
# is a local copy of the files as distributed (e.g. ../shared/realdata/rain100L): checked against
# the lock, then hard-linked (or copied) into the registry's drop folder; DIR is never modified.
# Without it `mprnet fetch` takes the files already in data/downloads or says where to drop them.
# Both sets are prepared before Snakemake starts, so bad input stops the run before any training.
REALDATA ?=
REAL_CONFIG ?= config/rain100l.yaml
REAL_STUDY ?= rain100l
real-study: $(STAMP)
	@set -e; start=$$(date +%s); \
	if [ -n "$(REALDATA)" ]; then $(PY) -m mprnet.data.drop raintrainl "$(REALDATA)"; fi; \
	$(PY) -m mprnet.cli fetch --quiet raintrainl rain100l_orig || { status=$$?; \
		echo "real-study: no Rain100L data yet; drop it as printed above, or run: make real-study REALDATA=DIR" >&2; \
		exit $$status; }; \
	for ds in raintrainl/train rain100l_orig/test; do \
		test -f data/$$ds/manifest.csv || $(PY) -m mprnet.cli prepare --quiet $${ds%/*} --split $${ds#*/}; \
	done; \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" snakemake all --cores 2 --configfile $(REAL_CONFIG); \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" snakemake --cores 1 --configfile $(REAL_CONFIG) \
		--report results/$(REAL_STUDY)/report.html; \
	$(PY) -m mprnet.report.gains results/$(REAL_STUDY)/summary.csv; \
	echo "real study finished in $$(( $$(date +%s) - start )) s: see results/$(REAL_STUDY)/README.md and results/$(REAL_STUDY)/report.html"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/model_step.py

clean-venv:
	rm -rf $(VENV)
