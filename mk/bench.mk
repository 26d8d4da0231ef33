# mk/bench.mk - `make bench`: load generator, yardsticks, and the driver that
# measures everything and writes docs/benchmarks.md.  Not part of `make test`.

BENCH_PROGS := $(BUILD)/bench/loadgen $(BUILD)/bench/baseline_server $(BUILD)/bench/plain_xfer
BENCH_ARGS ?=

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(LDLIBS) -lm

## bench: run the benchmarks (a few minutes) and write docs/benchmarks.md
.PHONY: bench
bench:
	@sh scripts/deps.sh run
	@$(MAKE) --no-print-directory programs $(BENCH_PROGS)
	PEERDEX_BIN=$(abspath $(BIN)) $(PYTHON) bench/bench.py --tools $(BUILD)/bench \
	    --out docs/benchmarks.md $(BENCH_ARGS)
