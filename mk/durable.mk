# mk/durable.mk - what the state directory tests (tests/durable) need
# besides the programs: the fdatasync shim, built plain (no sanitizer: it is
# preloaded into sanitized servers too), its path handed to the tests.

DURABLE_SHIM := $(BUILD)/tests/failsync.so

$(DURABLE_SHIM): tests/durable/failsync.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -O2 -fPIC -shared $< -o $@

test-integration: $(DURABLE_SHIM)
TEST_BUILD += $(DURABLE_SHIM)
test-integration: export PEERDEX_FAILSYNC = $(abspath $(DURABLE_SHIM))
