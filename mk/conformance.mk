# mk/conformance.mk - the conformance kit (tests/conformance/conform.py, see
# docs/conformance.md) against our own server, peer and client, or others.

## conformance: the protocol kit against ours (or SERVER=h:p PEER="h:p path" CLIENT="cmd")
.PHONY: conformance
TEST_TARGETS += conformance
CONFORM_ARGS ?=

conformance: programs
	@$(PYTHON) tests/conformance/ours.py --bin $(abspath $(BIN)) --python $(PYTHON) \
	    $(if $(SERVER),--server '$(SERVER)') $(if $(PEER),--peer '$(PEER)') \
	    $(if $(CLIENT),--client '$(CLIENT)') -- $(CONFORM_ARGS)
