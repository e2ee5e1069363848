"""The soak suite reuses the server tests' helpers (tests/server/conftest.py)."""
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("server_conftest",
                                               Path(__file__).resolve().parents[1] / "server" / "conftest.py")
_server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_server)
Server, request = _server.Server, _server.request
