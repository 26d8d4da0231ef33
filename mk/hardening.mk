# mk/hardening.mk - sanitizer runs, fuzzing, the fuzz corpus as a regression
# test, lint and valgrind.  See docs/security.md for what each one proves.

## test-asan: every test, everything rebuilt with ASan+UBSan (build/asan)
## test-tsan: every test, everything rebuilt with TSan (build/tsan)
## fuzz: run each libFuzzer target for FUZZ_SECONDS (default 60)
## lint: cppcheck and clang-tidy over our own C code
## valgrind: the server under valgrind through a full workload and SIGTERM
## test-fuzz-corpus: the fuzz corpus as regression tests (part of make test)

.PHONY: test-asan test-tsan test-fuzz-corpus fuzz lint valgrind

# --- fuzz targets -----------------------------------------------------------
# A target tests/fuzz/fuzz_NAME.c has its seeds in tests/fuzz/corpus/NAME/
# and links the sources listed as its prerequisites below.  The log-entry target is built
# once the RPC helper's rpc/logstore.c exists.
FUZZ_NAMES := request
ifneq ($(wildcard rpc/logstore.c),)
FUZZ_NAMES += logstore
endif

# Regression: every corpus file through the same target, built with $(CC)
# and linked with the objects `make test` builds anyway (sanitized in the
# asan/tsan runs), driven by a plain main().
FUZZ_REGRESS := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz_%_regress)
TEST_TARGETS += test-fuzz-corpus
TEST_BUILD += $(FUZZ_REGRESS)

# Compiled one source at a time, so that each object's .d file names the
# headers it includes (a one-step build of two sources keeps only the last's).
$(BUILD)/tests/fuzz_%_regress: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/regress_main.o \
                               $(BUILD)/libpeerdex.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/fuzz/%.o: tests/fuzz/%.c | $(GEN)/logrpc.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Kept (not removed as intermediates), so that an unchanged tree rebuilds nothing.
.PRECIOUS: $(BUILD)/tests/fuzz/%.o
-include $(wildcard $(BUILD)/tests/fuzz/*.d)

test-fuzz-corpus: $(FUZZ_REGRESS)
	@set -e; for n in $(FUZZ_NAMES); do \
	    $(BUILD)/tests/fuzz_$${n}_regress tests/fuzz/corpus/$$n; done

# libFuzzer builds: clang, instrumented sources compiled in directly.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 4096
FUZZ_DIR     := build/fuzz
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -fno-omit-frame-pointer \
                -Icommon -Iserver -Irpc -I$(BUILD)/gen $(TIRPC_CFLAGS)

$(FUZZ_DIR)/fuzz_request: tests/fuzz/fuzz_request.c server/request.c server/auth.c
$(FUZZ_DIR)/fuzz_logstore: tests/fuzz/fuzz_logstore.c rpc/logstore.c common/fileio.c common/console.c common/clock.c
$(FUZZ_DIR)/fuzz_%:
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $^ -o $@ $(LDLIBS)

# New inputs go to build/fuzz/corpus/NAME (the committed seeds stay as they
# are); a crash is saved as tests/fuzz/crash-* (git-ignored) to turn into a
# seed once fixed.
fuzz:
	@sh scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
	@set -e; for n in $(FUZZ_NAMES); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$n; \
	    echo "== fuzz_$$n for $(FUZZ_SECONDS) s"; \
	    $(FUZZ_DIR)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) \
	        -max_len=$(FUZZ_MAX_LEN) -print_final_stats=1 \
	        -artifact_prefix=tests/fuzz/ \
	        $(FUZZ_DIR)/corpus/$$n tests/fuzz/corpus/$$n; \
	done

# --- sanitizer runs ---------------------------------------------------------
# Each run rebuilds everything in its own directory and runs `make test`,
# less the tests marked python_only (tests/conftest.py): they start none of
# our C programs, only Python (the client against stubs, the kit's own
# tests), so a sanitizer has nothing to watch in them.  Every test that runs
# one of our programs runs under both sanitizers.
# A report makes the reporting process exit 66 at once, and is also written
# to $(dir)/reports/, so a report from any process (a server stopped by a
# test, a client, a unit test) fails the run even if no test noticed.
SAN_STACK  := -DCONN_STACK_SIZE=1048576
ASAN_CFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=all $(SAN_STACK)
TSAN_CFLAGS := -fsanitize=thread $(SAN_STACK)
SAN_COMMON := halt_on_error=1:exitcode=66
# The hostile tests run a reduced workload under TSan (see tests/hostile).
TSAN_SCALE ?= 0.25

# $(call san_run,DIR,SAN_CFLAGS,ENV): make test in DIR, then the report check.
define san_run
	@rm -rf $(1)/reports && mkdir -p $(1)/reports
	@status=0; $(3) $(MAKE) --no-print-directory BUILD=$(1) BIN=$(1)/bin \
	    SAN_CFLAGS="$(2)" PYTEST_LEAVE_OUT="python_only $(PYTEST_LEAVE_OUT)" test || status=$$?; \
	if [ -n "$$(ls -A $(1)/reports)" ]; then \
	    echo "sanitizer reports in $(1)/reports:" >&2; \
	    cat $(1)/reports/* >&2; status=1; \
	fi; exit $$status
endef

test-asan:
	$(call san_run,build/asan,$(ASAN_CFLAGS),\
	    ASAN_OPTIONS=$(SAN_COMMON):detect_leaks=1:log_path=$(CURDIR)/build/asan/reports/asan \
	    UBSAN_OPTIONS=$(SAN_COMMON):print_stacktrace=1:log_path=$(CURDIR)/build/asan/reports/ubsan)

test-tsan:
	$(call san_run,build/tsan,$(TSAN_CFLAGS),\
	    TSAN_OPTIONS=$(SAN_COMMON):second_deadlock_stack=1:log_path=$(CURDIR)/build/tsan/reports/tsan \
	    PEERDEX_HOSTILE_SCALE=$(TSAN_SCALE))

# --- lint -------------------------------------------------------------------
# Our own C code; generated RPC files live in $(BUILD)/gen and are not ours.
LINT_SRCS = $(wildcard common/*.c server/*.c rpc/*.c bench/*.c tests/unit/*.c tests/fuzz/*.c)
LINT_INCS = -Icommon -Iserver -Irpc -I$(BUILD)/gen $(TIRPC_CFLAGS)
# Left out: checks that flag idioms this code uses on purpose and that the
# compiler's own warnings cover (int/double conversions of timings, widening
# in size arithmetic on small constants, strcpy into buffers sized for the
# string just measured, struct padding in test tables).
TIDY_CHECKS := bugprone-*,-bugprone-easily-swappable-parameters,\
-bugprone-reserved-identifier,-bugprone-narrowing-conversions,\
-bugprone-implicit-widening-of-multiplication-result,cert-err34-c,cert-str34-c,\
clang-analyzer-*,-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling,\
-clang-analyzer-security.insecureAPI.strcpy,-clang-analyzer-optin.performance.Padding,\
performance-*,misc-redundant-expression

lint:
	@sh scripts/deps.sh lint
	@$(MAKE) --no-print-directory programs
	cppcheck --quiet --enable=warning,performance,portability \
	    --error-exitcode=1 --inline-suppr --std=c11 -D__linux__ \
	    --include=/usr/include/uthash.h \
	    $(LINT_INCS) $(LINT_SRCS)
	clang-tidy --quiet --checks='$(TIDY_CHECKS)' --warnings-as-errors='*' \
	    $(LINT_SRCS) -- -std=gnu11 $(LINT_INCS)

# --- valgrind ---------------------------------------------------------------
valgrind:
	@sh scripts/deps.sh lint
	@$(MAKE) --no-print-directory programs
	PEERDEX_BIN=$(abspath $(BIN)) $(PYTHON) tests/hostile/valgrind_run.py
