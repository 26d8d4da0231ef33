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

TIRPC_CFLAGS := $(shell pkg-config --cflags libtirpc 2>/dev/null || echo -I/usr/include/tirpc)
TIRPC_LIBS   := $(shell pkg-config --libs libtirpc 2>/dev/null || echo -ltirpc)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(SAN_CFLAGS) -pthread \
             $(TIRPC_CFLAGS) -I$(BUILD)/gen -Iserver -Irpc -MMD -MP
LDLIBS  = -pthread $(TIRPC_LIBS)

SERVER_SRCS := $(wildcard server/*.c)
SERVER_OBJS := $(SERVER_SRCS:%.c=$(BUILD)/%.o)
# Everything but main() goes into a library the unit tests link against.
LIB_OBJS    := $(filter-out $(BUILD)/server/main.o,$(SERVER_OBJS))
PROGRAMS    := $(BIN)/server
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
# What `make test` runs, in order; fragments may append their suites.
TEST_TARGETS := test-unit test-integration

.PHONY: all deps run client test test-unit test-integration clean help
all: programs

# Component fragments (RPC log, client, benchmarks, hardening) add programs,
# objects and targets here.
-include mk/*.mk

programs: $(PROGRAMS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libpeerdex.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BIN)/server: $(BUILD)/server/main.o $(BUILD)/libpeerdex.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpeerdex.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(CHECK_LIBS)

deps:
	@sh scripts/deps.sh test

## run: start the system in the foreground on $(PORT); Ctrl-C stops it all
run:
	@sh scripts/deps.sh run
	@$(MAKE) --no-print-directory programs
	@BIN=$(BIN) PORT=$(PORT) PYTHON=$(PYTHON) sh scripts/run.sh

## client: start a client against the local server on $(PORT)
client:
	@sh scripts/deps.sh run
	$(PYTHON) client/client.py -s 127.0.0.1 -p $(PORT)

## test: every unit and integration test (installs what it needs first)
test:
	@sh scripts/deps.sh test
	@$(MAKE) --no-print-directory programs $(UNIT_TESTS)
	@$(MAKE) --no-print-directory $(TEST_TARGETS)

test-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; CK_DEFAULT_TIMEOUT=20 $$t; done

test-integration: programs
	PEERDEX_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests

clean:
	rm -rf build bin

help:
	@grep -h '^## ' $(MAKEFILE_LIST) | sed 's/^## /  make /'

-include $(SERVER_OBJS:.o=.d)
