# Targets a newcomer types on a fresh machine: `make test`, `make docs`.
# Nothing needs to be installed beforehand except python3 (>=3.10) with venv.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# The library never downloads weights in tests: make every hub lookup fail at once.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0
# The pinned environment has every extra (faiss, onnxruntime, EfficientNet-Lite0's weights, scikit-image): a check that
# needs one of them fails instead of skipping itself (`core.optional_check`).
export BUILDING_METRIC_REQUIRE := 1
# The feature caches of the tests' photo folders: out of the checkout and out of the user's own cache.
export BUILDING_METRIC_CACHE ?= /tmp/building_metric-test-cache

.PHONY: test test-slow test-portable docs site demo lock sync-check imports lint format nbtest pytest chromium clean-check

# The pinned development environment (torch, torchvision and everything else from the lock).
$(VENV)/.installed: requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $@

# Notebooks as tests, the docs site built from them, then the tests in tests/ (the console scripts, kills and
# multi-process runs in subprocesses, and the rendered docs opened in headless Chromium); last, that the run wrote
# nothing into the checkout.
# (One after the other: running the notebooks beside tests/ was measured slower, 12.5 against 11.9 minutes on 2 cores.)
test: $(VENV)/.installed chromium
	@git status --porcelain --untracked-files=all > .git/bm-status-before
	$(MAKE) --no-print-directory sync-check imports lint nbtest site pytest
	@$(MAKE) --no-print-directory clean-check
	@echo "make test: all checks passed"

# ruff, configured in pyproject.toml: `make lint` checks (inside `make test`), `make format` rewrites. The hand-written
# Python (tools, benchmarks, tests) is formatted and linted; the notebooks' code cells are linted and fixed, and the
# package is generated from them (black's layout would put fastai's one-comment-per-parameter signatures on `):`), then
# checked for module-level imports it does not use (a name kept for its old import path is listed in the cell's `_all_`).
LINTED := tools benchmarks tests nbs
lint: $(VENV)/.installed
	$(BIN)/ruff format --no-cache --check --quiet tools benchmarks tests
	$(BIN)/ruff check --no-cache --quiet $(LINTED)
	$(BIN)/ruff check --no-cache --quiet --select F401 building_metric

format: $(VENV)/.installed
	$(BIN)/ruff format --no-cache --quiet tools benchmarks tests
	$(BIN)/ruff check --no-cache --quiet --fix $(LINTED)
	$(BIN)/nbdev-export

# The long runs (cells marked `#| slow`, tests marked slow, the fuzz tests with many examples): not in `make test`;
# CI runs them after `make test` when BM_SLOW=1 (`BM_SLOW=1 .ci/run`).
test-slow: $(VENV)/.installed
	$(BIN)/nbdev-test --n-workers 2 --timing --flags slow
	$(BIN)/pytest -q -m slow tests
	HYPOTHESIS_PROFILE=slow $(BIN)/pytest -q tests/test_fuzz.py

# A second CPU on this one: the numerically sensitive checks (checkpoints, answers, shards, distributed runs and the
# SLURM scripts, resumes, the staged pipeline and its toolkit table, ONNX and int8 exports, the server, the segmentation
# settings and the training heads; and, to keep `make test` under 12 minutes, the pages of the metric learner, the
# visualisations, the evaluation report and segmentation inference), left out of `make test` and run
# here instead, with torch, MKL, oneDNN, numpy and OpenBLAS held to their baseline (SSE4) kernels, whose float sums
# round otherwise than this machine's AVX2/AVX-512 ones. A test that leans on one CPU's last bits fails here, on the
# developer's own machine. `make test` and `make test-portable` together run every check once; CI runs both (.ci/run).
PORTABLE_ENV := ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41 \
  NPY_DISABLE_CPU_FEATURES="X86_V3 X86_V4 AVX512_ICL AVX512_SPR" OPENBLAS_CORETYPE=Nehalem
PORTABLE_TESTS := tests/test_checkpoint.py tests/search/test_answers.py tests/test_distributed.py tests/jobs/test_pair_train.py \
  tests/features/test_extract.py tests/test_core.py tests/search/test_serve.py tests/jobs/test_staged.py tests/test_slurm.py \
  tests/jobs/test_seg_train.py tests/jobs/test_mesh_train.py tests/config/test_segmentation.py tests/jobs/test_train_heads.py \
  tests/run/test_resume.py
PORTABLE_NBS := ^(03_callbacks|04c_metric.learner|05a_evaluation.visualize|07_evaluation.report|08d_segmentation.infer|04f_metric.staged|02_features.extractors|07e_search.gallery|07f_search.answers|07ja_search.shards|06b_distributed|09s_jobs.staged|09ze_jobs.deploy)\.ipynb$$
test-portable: $(VENV)/.installed
	$(PORTABLE_ENV) $(BIN)/nbdev-test --n-workers 2 --file-re '$(PORTABLE_NBS)'
	$(PORTABLE_ENV) $(BIN)/pytest -q $(PORTABLE_TESTS)

# A test that writes into the checkout is a bug: fail if `make test` left anything git did not see before it.
clean-check:
	@git status --porcelain --untracked-files=all > .git/bm-status-after; \
	if ! diff -q .git/bm-status-before .git/bm-status-after >/dev/null; then \
	  echo "make test wrote into the checkout (git status before -> after):"; diff .git/bm-status-before .git/bm-status-after; exit 1; fi

# The floors of ARCHITECTURE.md: no import cycle, no private name across modules, no import from a higher floor.
imports: $(VENV)/.installed
	$(BIN)/python tools/check_imports.py building_metric

# Debian's Chromium for the docs' browser test (tests/test_docs.py), installed when missing and apt-get is at hand.
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  { echo "make test needs Chromium for the docs check: install Debian's chromium package (apt-get install chromium)"; exit 1; }

# The library is generated from the notebooks, and committed notebooks are clean:
# regenerate both and fail if anything changed.
sync-check: $(VENV)/.installed
	@tmp=$$(mktemp -d); cp -r building_metric "$$tmp/lib"; cp -r nbs "$$tmp/nbs"; \
	$(BIN)/nbdev-export; $(BIN)/nbdev-clean; \
	ok=1; \
	if ! diff -rq -x __pycache__ "$$tmp/lib" building_metric; then \
	  echo "nbdev-export changed building_metric/: the library does not match the notebooks; commit the export."; ok=0; fi; \
	if ! diff -rq -x .ipynb_checkpoints "$$tmp/nbs" nbs; then \
	  echo "nbdev-clean changed nbs/: run nbdev-clean and commit the cleaned notebooks."; ok=0; fi; \
	rm -rf "$$tmp"; test $$ok = 1

# (the numerically sensitive notebooks and tests run once, on baseline kernels, in `make test-portable`)
nbtest: $(VENV)/.installed
	$(BIN)/nbdev-test --n-workers 2 --timing --cell-timeout 1800 --skip-file-re '$(PORTABLE_NBS)'

pytest: $(VENV)/.installed
	$(BIN)/pytest -q --durations=15 tests $(addprefix --ignore=,$(PORTABLE_TESTS))

# The whole pipeline on synthetic buildings: data, features, training, evaluation report in demo/report.
demo: $(VENV)/.installed
	$(BIN)/bm-demo --out demo

# The documentation site without Quarto: the notebooks processed as nbdev-docs would process them, turned into
# Markdown pages (tools/docs_site.py, which also writes README.md from index.ipynb), then mkdocs-material builds
# _site/ with search, the sidebar of nbs/sidebar.yml, a table of contents per page and previous/next links.
# (With Quarto installed, `nbdev-docs` builds the nbdev site from the same notebooks.)
docs: $(VENV)/.installed
	$(BIN)/nbdev-export
	$(MAKE) --no-print-directory site

# The site from the notebooks as they are (`make docs` exports the library first; `make test` has, in sync-check).
# (nbdev-proc-nbs itself would first try to download and install Quarto, which cannot be had here.)
site: $(VENV)/.installed
	$(BIN)/python -c "import nbdev.quarto as q; q._ensure_quarto = lambda: None; q._pre_docs()"
	rm -rf _mkdocs _site
	$(BIN)/python tools/docs_site.py _proc _mkdocs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build -q -f _mkdocs/mkdocs.yml

# Re-resolve the pinned development environment after changing dependencies in pyproject.toml.
lock: $(VENV)/.installed
	$(BIN)/uv pip compile -q --python $(BIN)/python pyproject.toml --extra dev \
	  -c tools/torch-pins.txt -o requirements-dev.lock
