# mk/client.mk - the scripted end-to-end demo.

## demo: a whole session in one terminal (server, two clients, download, checksum)
.PHONY: demo
demo:
	@sh scripts/deps.sh run
	@$(MAKE) --no-print-directory programs
	@BIN=$(BIN) PYTHON=$(PYTHON) sh scripts/demo.sh
