# The project's commands. CI runs `make test` (through .ci/run).
CARGO ?= cargo

.PHONY: demo test deps check-format lint unit header bench fuzz serve js-deps hostile-rss

# The main job: the demo host chatting through the plugin (offline simulator
# when no MOONSHOT_API_KEY is set).
demo:
	$(CARGO) run -q -p host-demo -- chat "Hello, Kimi! Introduce yourself in one sentence."

# Every test: formatting, lints, unit and integration tests (C hosts under
# gcc and valgrind, header drift, abi_stable layout check, the simulator,
# third-party mocks, puter.js under Node). Needs gcc, g++, valgrind, python3
# and node/npm (.ci/run installs the system ones).
test: deps check-format lint unit

# The test suite's npm and PyPI packages, pinned and installed into the
# tree; a no-op when they are already there.
deps: js-deps
	bash tests/thirdparty/install.sh

check-format:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

# Regenerate include/moonshot_provider.h after changing plugin/abi.
header:
	$(CARGO) run -q -p moonshot-tests --bin gen-header

# Fuzzing (not part of `make test`): every cargo-fuzz target of plugin/fuzz
# for FUZZ_SECONDS each, from the committed seeds (plugin/fuzz/seeds/<target>)
# plus what earlier runs found (plugin/fuzz/corpus/<target>, not committed).
# A crash stops the run and leaves its input in plugin/fuzz/artifacts/<target>.
# cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1 allows them on stable.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= sse_decoder request_prepare config_from_json stream_chunk
FUZZ_FLAGS ?=

fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@cd plugin/fuzz && for target in $(FUZZ_TARGETS); do \
		echo "== fuzz $$target for $(FUZZ_SECONDS) s"; \
		mkdir -p corpus/$$target && \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$target corpus/$$target seeds/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FUZZ_FLAGS) || exit 1; \
	done

# Not part of `make test` (a sanitized build of the test tree takes minutes):
# the plugin built with ThreadSanitizer and with AddressSanitizer, the C host
# tests and the fault suite run against each; any report fails. Needs gcc.
# `make sanitize SANITIZERS=thread` runs one. See tests/sanitize/run.sh.
SANITIZERS ?= thread address

.PHONY: sanitize
sanitize:
	bash tests/sanitize/run.sh $(SANITIZERS)

# Not part of `make test`: what the plugin costs a host, next to the openai
# npm package and two floors (README, "Benchmarks"). Options go in
# BENCH_ARGS, e.g. `make bench BENCH_ARGS="--n 500 --profile"`.
bench:
	$(CARGO) build --release -q -p moonshot-provider
	@# The async-openai client: its own crate and lock, outside the workspace.
	$(CARGO) build --release -q --manifest-path tests/bench/async-openai/Cargo.toml || \
		echo "bench: async-openai not built; its rows will say skipped"
	$(CARGO) run --release -q -p moonshot-tests --bin bench -- $(BENCH_ARGS)

# Not part of `make test`: peak RSS and CPU of each hostile case of issue 11
# against the release plugin, one process per case (README, "What the plugin
# fetches and keeps"). Compare another build with HOSTILE_PLUGIN=path.so.
HOSTILE_CASES ?= request-array request-array-x3 answer-stream answer-gzip media-10 media-20 tool-indices
HOSTILE_PLUGIN ?= target/release/libmoonshot_provider.so
hostile-rss:
	$(CARGO) build --release -q -p moonshot-provider
	$(CARGO) build -q -p moonshot-tests --bin hostile-rss
	@for case in $(HOSTILE_CASES); do \
		MOONSHOT_PLUGIN_PATH=$(HOSTILE_PLUGIN) target/debug/hostile-rss $$case || exit 1; \
	done

# puter.js against the demo host (issue 6): `make serve` answers Puter's
# driver protocol on 127.0.0.1:4100 (offline simulator without a key);
# `make js-deps` installs tests/js's and bindings/node's locked npm
# packages, which the puter.js and Node provider tests (part of `make test`) need.
serve:
	$(CARGO) run -q -p host-demo -- serve $(SERVE_ARGS)

js-deps:
	@for dir in tests/js bindings/node; do \
	  if [ ! -f $$dir/node_modules/.package-lock.json ] || \
	      ! cmp -s $$dir/package-lock.json $$dir/node_modules/.installed-lock.json; then \
		(cd $$dir && npm ci --no-audit --no-fund --loglevel=error && \
		 cp package-lock.json node_modules/.installed-lock.json) || exit 1; \
	  fi; \
	done
