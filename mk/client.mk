# mk/client.mk - the scripted end-to-end demo.

## demo: the lab-demo session in one terminal (server, log, three clients, download, DELETE)
.PHONY: demo
demo:
	@sh scripts/deps.sh run
	@$(MAKE) --no-print-directory programs
	@BIN=$(BIN) PYTHON=$(PYTHON) sh scripts/demo.sh
