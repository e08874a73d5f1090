# The project's commands. CI runs `make test` (through .ci/run).
CARGO ?= cargo

.PHONY: demo test check-format lint unit header

# The main job: the demo host chatting through the plugin (offline simulator
# when no MOONSHOT_API_KEY is set).
demo:
	$(CARGO) run -q -p host-demo -- chat "Hello, Kimi! Introduce yourself in one sentence."

# Every test: formatting, lints, unit and integration tests (C hosts,
# header drift, abi_stable layout check, simulator end to end).
test: check-format lint unit

check-format:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

# Regenerate include/moonshot_provider.h after changing plugin/abi.
header:
	$(CARGO) run -q -p moonshot-tests --bin gen-header
