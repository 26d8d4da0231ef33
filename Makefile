# peerdex - build, run and test.  `make help` lists the targets.
#
# Objects and generated files go to $(BUILD), programs to $(BIN); the
# sanitizer targets rebuild everything into their own directories.

BUILD  ?= build
BIN    ?= bin
CC     ?= cc
PYTHON ?= /usr/bin/python3
SAN_CFLAGS ?=
PORT   ?= 8888
# The index server `make client` talks to; SERVER=host overrides it (and
# means host:port to `make conformance`, mk/conformance.mk).
CLIENT_HOST = $(or $(SERVER),127.0.0.1)

TIRPC_CFLAGS := $(shell pkg-config --cflags libtirpc 2>/dev/null || echo -I/usr/include/tirpc)
TIRPC_LIBS   := $(shell pkg-config --libs libtirpc 2>/dev/null || echo -ltirpc)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)
MHD_CFLAGS   := $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS     := $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)

WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(SAN_CFLAGS) -pthread \
             $(TIRPC_CFLAGS) $(MHD_CFLAGS) -I$(BUILD)/gen -Icommon -Iserver -Irpc -MMD -MP
LDLIBS  = -pthread $(TIRPC_LIBS) $(MHD_LIBS)

SERVER_SRCS := $(wildcard server/*.c)
SERVER_OBJS := $(SERVER_SRCS:%.c=$(BUILD)/%.o)
# common/: what both programs use (sockets, clock, files, console, diagnostics).
COMMON_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard common/*.c))
# Everything but main() goes into a library the unit tests and both programs
# link against.
LIB_OBJS    := $(filter-out $(BUILD)/server/main.o,$(SERVER_OBJS)) $(COMMON_OBJS)
PROGRAMS    := $(BIN)/server
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
# What `make test` runs, in order; fragments may append their suites.
TEST_TARGETS := test-unit test-integration
# What those run, built before any of them starts, $(JOBS) compilers at once
# (default: one per CPU); fragments may append.
TEST_BUILD := programs $(UNIT_TESTS)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all programs deps run client test test-unit test-integration clean help

## all: build bin/server and bin/log_server (first installs, or names, missing packages)
all:
	@sh scripts/deps.sh build
	@$(MAKE) --no-print-directory programs

# Component fragments (RPC log, client, benchmarks, hardening) add programs,
# objects and targets here.
-include mk/*.mk

## programs: build the programs only, without checking the Debian packages
programs: $(PROGRAMS)
	@:

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The live view's page, built into the server (http.c includes it).
WEB_ASSETS := server/web/index.html server/web/page.css server/web/page.js
$(BUILD)/gen/web_assets.h: $(WEB_ASSETS) scripts/embed.sh
	@mkdir -p $(@D)
	sh scripts/embed.sh $(WEB_ASSETS) > $@.tmp && mv $@.tmp $@
$(BUILD)/server/http.o: $(BUILD)/gen/web_assets.h

$(BUILD)/libpeerdex.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BIN)/server: $(BUILD)/server/main.o $(BUILD)/libpeerdex.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS)

# (Its .d file adds the headers as prerequisites: only the source and the
# library go to the compiler.)
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpeerdex.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(filter %.c %.a,$^) -o $@ $(LDLIBS) $(CHECK_LIBS)

## deps: install (or name) every Debian package the build, run and tests need
deps:
	@sh scripts/deps.sh test

## run: build, run the index server on port $(PORT) and the log server on PORT+1 (restarted if they die); Ctrl-C stops both
run:
	@sh scripts/deps.sh run
	@$(MAKE) -s --no-print-directory programs
	@BIN=$(BIN) PORT=$(PORT) PYTHON=$(PYTHON) exec sh scripts/run.sh

## client: start a client against $(CLIENT_HOST):$(PORT) (make client SERVER=host PORT=n PEER_PORT=n)
client:
	@sh scripts/deps.sh run
	@$(PYTHON) client/client.py -s $(CLIENT_HOST) -p $(PORT) $(if $(PEER_PORT),--peer-port $(PEER_PORT))

## test: every unit and integration test (installs what it needs first)
test:
	@sh scripts/deps.sh test
	@$(MAKE) --no-print-directory -j$(JOBS) $(TEST_BUILD)
	@$(MAKE) --no-print-directory $(TEST_TARGETS)

## test-unit: the C unit tests (check), as many at once as there are cores
test-unit: $(UNIT_TESTS)
	@printf '%s\n' $(UNIT_TESTS) | CK_DEFAULT_TIMEOUT=20 xargs -P $(JOBS) -I{} \
	    sh -c 'out=$$({} 2>&1); s=$$?; printf "== %s\n%s\n" {} "$$out"; exit $$s'

# pytest's temporary directories go under $(BUILD), not /tmp (a test run
# leaves /tmp as it found it).  The suites run in $(PYTEST_WORKERS) parallel
# workers (python3-pytest-xdist; most tests wait on deadlines, not the CPU:
# on 2 cores 6 workers took 63 s, 4 took 74 s, 8 took 67 s),
# then, one at a time, the tests marked (tests/conftest.py) `alone` (tight
# bounds on a reply time or on CPU use, or a core kept busy throughout).
# Tests that use the host's rpcbind run in parallel: each gives its log
# servers a program number of its own (LOG_RPC_PROG, tests/conftest.py).
# pytest's status 5 (nothing selected, e.g. by PYTEST_ARGS=-k) is no failure.
# PYTEST_LEAVE_OUT=MARKER...: the tests with these markers are not run; the
# sanitizer runs (mk/hardening.mk) leave out `python_only`, the tests that
# start none of our C programs (tests/conftest.py checks that they do not).
PYTEST_WORKERS ?= 6
PYTEST_LEAVE_OUT ?=
PYTEST = PEERDEX_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q -p no:cacheprovider
PYTEST_NOT = $(foreach m,$(PYTEST_LEAVE_OUT), and not $(m))
## test-integration: the pytest suites (PYTEST_ARGS=... passes options, PYTEST_WORKERS=n)
test-integration: programs
	@status=0; \
	$(PYTEST) --basetemp=$(abspath $(BUILD))/pytest -n $(PYTEST_WORKERS) --dist loadgroup \
	    -m "not alone$(PYTEST_NOT)" $(PYTEST_ARGS) tests || \
	    { rc=$$?; [ $$rc -eq 5 ] || status=$$rc; }; \
	echo "== one at a time: the tests marked alone"; \
	$(PYTEST) --basetemp=$(abspath $(BUILD))/pytest-alone -m "alone$(PYTEST_NOT)" \
	    $(PYTEST_ARGS) tests || { rc=$$?; [ $$rc -eq 5 ] || status=$$rc; }; \
	exit $$status

## clean: remove build/ and bin/ (sources, operations.log and var/ stay)
clean:
	rm -rf build bin

# The list is made from the `## target: text` lines of the Makefile and of
# mk/*.mk, with the variables they name replaced by their values.
HELP_VARS := PORT CLIENT_HOST BUILD BIN FUZZ_SECONDS
## help: this list
help:
	@echo "peerdex: make [target] [VAR=value...]"
	@grep -h '^## ' $(MAKEFILE_LIST) | sed -e 's/^## //' \
	    $(foreach v,$(HELP_VARS),-e 's|\$$($(v))|$($(v))|g') | \
	    awk -F': ' '{ t = ($$1 == "all") ? "make" : "make " $$1; \
	                  sub(/^[^:]*: /, ""); printf "  %-22s %s\n", t, $$0 }'

-include $(SERVER_OBJS:.o=.d) $(COMMON_OBJS:.o=.d) $(UNIT_TESTS:=.d)
