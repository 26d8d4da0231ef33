# mk/web.mk - `make test-web`: the live view (server/http.c, server/web/)
# in Debian's chromium, headless, through chromedriver and selenium.  Not
# part of `make test`, which needs no browser; .ci/run runs it after it.

## test-web: the live view in headless chromium (screenshot in $(BUILD)/web/)
.PHONY: test-web
test-web:
	@sh scripts/deps.sh test web
	@$(MAKE) --no-print-directory programs
	PEERDEX_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q -p no:cacheprovider \
	    --basetemp=$(abspath $(BUILD))/pytest-web $(PYTEST_ARGS) tests/web/browser_live_view.py
