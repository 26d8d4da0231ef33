"""SEARCH in the operation log: one line per SEARCH, its words joined by '+'
where a path would stand, with and without a state directory."""
import pytest

import harness
from log_lib import wait_lines


@pytest.mark.parametrize("durable", [False, True])
def test_one_line_per_search_with_its_words(logs, logged_server, tmp_path, durable):
    log = logs(port=0)
    srv = logged_server(log.port, *(["-d", str(tmp_path / "state")] if durable else []))
    dt = "17/12/2014 13:20:%02d"
    assert harness.code(srv.port, "REGISTER", "bob", datetime=dt % 0) == 0
    assert harness.code(srv.port, "CONNECT", "bob", "40001", datetime=dt % 1) == 0
    assert harness.code(srv.port, "SEARCH", "bob", "  Lecture-NOTES  pdf", "",
                        datetime=dt % 2) == 0
    assert harness.code(srv.port, "SEARCH", "nobody", "x", "5", datetime=dt % 3) == 1
    # Refused before it is understood (no word): not an operation, not logged.
    assert harness.code(srv.port, "SEARCH", "bob", "--", "", datetime=dt % 4) == 4
    assert harness.code(srv.port, "DISCONNECT", "bob", datetime=dt % 5) == 0
    assert wait_lines(log.path, 5) == [
        "bob REGISTER 17/12/2014 13:20:00", "bob CONNECT 17/12/2014 13:20:01",
        "bob SEARCH lecture+notes+pdf 17/12/2014 13:20:02",
        "nobody SEARCH x 17/12/2014 13:20:03", "bob DISCONNECT 17/12/2014 13:20:05"]
