"""The suite's command-line options, here at the top so pytest reads them first.

`pytest --impl final` would otherwise be read as "test the path final/"
before tests/conftest.py is loaded. The fixtures live in tests/conftest.py.
"""

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--impl", action="append", default=[], metavar="PATH",
                     help="implementation to test: final, chapters/03_cgroups, or a copy (default: all)")
    parser.addoption("--chapter", type=int, default=None, help="chapter of a --impl not named NN_x")
