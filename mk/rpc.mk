# mk/rpc.mk - the operation log: rpcgen stubs, the log store, the log server.
#
# Stubs are generated at build time (rpcgen -M: thread-safe) into
# $(BUILD)/gen and never committed; they compile with the few warning
# exceptions rpcgen's output needs, and nothing else is relaxed.  The log
# server has its own dispatcher (rpc/log_server.c: it frees what a failed
# decode left) and connection loop (rpc/rpcserve.c), so rpcgen's server
# stub is not built.  Batch signatures use
# nettle's HMAC-SHA256 (rpc/logmac.c).

GEN      := $(BUILD)/gen
RPC_X    := rpc/logrpc.x
RPC_GEN  := $(GEN)/logrpc.h $(GEN)/logrpc_xdr.c $(GEN)/logrpc_clnt.c
RPC_GEN_CFLAGS := -Wno-unused-variable -Wno-unused-parameter -Wno-cast-function-type

PROGRAMS += $(BIN)/log_server
# The XDR routines, the client stub and the store go into libpeerdex.a: the
# index server and the unit tests link them from there.
LIB_OBJS += $(GEN)/logrpc_xdr.o $(GEN)/logrpc_clnt.o $(BUILD)/rpc/logstore.o \
            $(BUILD)/rpc/logmac.o
LDLIBS   += $(shell pkg-config --libs nettle 2>/dev/null || echo -lnettle)

# rpcgen names the header it includes after its input: run it beside the .x.
$(GEN)/logrpc.h: $(RPC_X)
	@mkdir -p $(@D)
	rm -f $@ && cd rpc && rpcgen -M -h logrpc.x -o $(abspath $@)
$(GEN)/logrpc_xdr.c: $(RPC_X) $(GEN)/logrpc.h
	rm -f $@ && cd rpc && rpcgen -M -c logrpc.x -o $(abspath $@)
$(GEN)/logrpc_clnt.c: $(RPC_X) $(GEN)/logrpc.h
	rm -f $@ && cd rpc && rpcgen -M -l logrpc.x -o $(abspath $@)

$(GEN)/%.o: $(GEN)/%.c $(GEN)/logrpc.h
	$(CC) $(ALL_CFLAGS) $(RPC_GEN_CFLAGS) -c $< -o $@

# Everything that includes the generated header waits for it.
$(BUILD)/server/oplog.o $(BUILD)/rpc/logstore.o $(BUILD)/rpc/logmac.o \
    $(BUILD)/rpc/log_server.o $(BUILD)/rpc/rpcserve.o: $(GEN)/logrpc.h
$(UNIT_TESTS): | $(GEN)/logrpc.h

$(BIN)/log_server: $(BUILD)/rpc/log_server.o $(BUILD)/rpc/rpcserve.o $(BUILD)/libpeerdex.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS)

-include $(BUILD)/rpc/log_server.d $(BUILD)/rpc/logstore.d $(BUILD)/rpc/logmac.d \
         $(BUILD)/rpc/rpcserve.d
