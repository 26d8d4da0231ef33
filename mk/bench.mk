# mk/bench.mk - `make bench`: load generator, yardsticks, and the driver that
# measures everything and writes docs/benchmarks.md.  Not part of `make test`.

BENCH_PROGS := $(BUILD)/bench/loadgen $(BUILD)/bench/baseline_server $(BUILD)/bench/plain_xfer \
               $(BUILD)/bench/ceiling_server $(BUILD)/bench/server_lockstats
BENCH_ARGS ?=

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(LDLIBS) -lm

# The index server with the registry's lock-hold counters (registry.c built
# with -DREGISTRY_LOCK_STATS): it prints them on stderr when it stops.
$(BUILD)/bench/registry_lockstats.o: server/registry.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DREGISTRY_LOCK_STATS -c $< -o $@

$(BUILD)/bench/server_lockstats: $(BUILD)/server/main.o $(BUILD)/bench/registry_lockstats.o \
                                 $(BUILD)/libpeerdex.a
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS)

## bench: run the benchmarks (a few minutes); write docs/benchmarks.md and its curves (docs/img/bench-*.svg)
.PHONY: bench
bench:
	@sh scripts/deps.sh run plot
	@$(MAKE) --no-print-directory programs $(BENCH_PROGS)
	PEERDEX_BIN=$(abspath $(BIN)) $(PYTHON) bench/bench.py --tools $(BUILD)/bench \
	    --out docs/benchmarks.md $(BENCH_ARGS)
