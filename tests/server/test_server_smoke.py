"""Smoke test: the server starts, answers, and stops cleanly."""
import harness


def test_register_twice(server):
    """The server starts, answers, prints the operation line and stops cleanly."""
    assert harness.code(server.port, "REGISTER", "alice") == 0
    assert harness.code(server.port, "REGISTER", "alice") == 1
    server.wait_line(r"^s> OPERATION REGISTER FROM alice$")
    assert server.stop() == 0
