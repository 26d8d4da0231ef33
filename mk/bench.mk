# mk/bench.mk - `make bench`: load generator, yardsticks, and the driver that
# measures everything and writes docs/benchmarks.md.  Not part of `make test`.

BENCH_PROGS := $(BUILD)/bench/loadgen $(BUILD)/bench/baseline_server $(BUILD)/bench/plain_xfer \
               $(BUILD)/bench/ceiling_server $(BUILD)/bench/server_lockstats \
               $(BUILD)/bench/server_nosearch
BENCH_ARGS ?=

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(LDLIBS) -lm

# The index server with the registry lock's holds timed per operation
# (bench/lockstats.c, wrapped around the registry's entry points and the
# mutex calls at link time): it prints them on stderr when it exits.
LOCKSTATS_WRAP := registry_apply registry_restore_files registry_visit registry_endpoint \
                  registry_endpoints registry_view pthread_mutex_lock pthread_mutex_unlock \
                  pthread_cond_wait
$(BUILD)/bench/server_lockstats: $(BUILD)/server/main.o bench/lockstats.c $(BUILD)/libpeerdex.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS) $(LOCKSTATS_WRAP:%=-Wl,--wrap=%)

# The index server without the search index (registry.c built with
# -DREGISTRY_NO_SEARCH; SEARCH answers "other error"): the yardstick for
# what the index costs REGISTER, PUBLISH and memory.
$(BUILD)/bench/registry_nosearch.o: server/registry.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DREGISTRY_NO_SEARCH -c $< -o $@

$(BUILD)/bench/server_nosearch: $(BUILD)/server/main.o $(BUILD)/bench/registry_nosearch.o \
                                $(BUILD)/libpeerdex.a
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS)

## bench: run the benchmarks (a few minutes); write docs/benchmarks.md and its curves (docs/img/bench-*.svg)
.PHONY: bench
bench:
	@sh scripts/deps.sh run plot
	@$(MAKE) --no-print-directory programs $(BENCH_PROGS)
	PEERDEX_BIN=$(abspath $(BIN)) $(PYTHON) bench/bench.py --tools $(BUILD)/bench \
	    --out docs/benchmarks.md $(BENCH_ARGS)
