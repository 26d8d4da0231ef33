"""Smoke test: the server starts, answers, and stops cleanly."""
import harness


def test_register_twice(server):
    assert harness.code(server.port, "REGISTER", "alice") == 0
    assert harness.code(server.port, "REGISTER", "alice") == 1
    server.wait_line(r"^s> OPERATION REGISTER FROM alice$")
    assert server.stop() == 0
