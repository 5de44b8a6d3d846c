"""Promises that the workshop's exercises teach and no other test pinned down.

Each exercise (see tools/exercises.py) names the tests that must turn green
when a student has written it. Where the rest of the suite checked only the
common case, these tests check the rule the exercise's hint states: how -e
passes a variable on, how PATH is searched, how Docker's sizes become bytes.
Each test's chapter is in tests/table.py.
"""

import os

import pytest

from conftest import needs_root, failure_code
from test_cgroups import V2, Running, cgroup_file

pytestmark = needs_root


# --- chapter 1: the environment and the PATH lookup (exercises 1.1 and 1.3) ----------------

def test_a_bare_e_key_passes_the_engines_value_and_an_empty_key_is_refused(dockyard, rootfs, impl):
    env = {**impl.env(), "FROM_THE_ENGINE": "passed on"}
    env.pop("NOT_SET_ANYWHERE", None)
    result = dockyard("run", "-e", "FROM_THE_ENGINE", "-e", "NOT_SET_ANYWHERE", "--rootfs", rootfs, "env", env=env)
    assert result.returncode == 0, result.stderr
    assert "FROM_THE_ENGINE=passed on\n" in result.stdout and "NOT_SET_ANYWHERE" not in result.stdout
    refused = dockyard("run", "-e", "=value", "--rootfs", rootfs, "true")
    assert refused.returncode == failure_code(refused) and "invalid environment variable" in refused.stderr
    assert "hint:" in refused.stderr


def test_path_is_searched_in_order_past_a_directory_named_like_the_command(dockyard, rootfs):
    os.makedirs(os.path.join(rootfs, "first", "echo"))  # a directory is no program: keep looking
    os.makedirs(os.path.join(rootfs, "second"))
    with open(os.path.join(rootfs, "second", "echo"), "w") as f:
        f.write("#!/bin/sh\necho from second\n")
    os.chmod(os.path.join(rootfs, "second", "echo"), 0o755)
    result = dockyard("run", "-e", "PATH=/nowhere:/first:/second:/bin", "--rootfs", rootfs, "echo", "x")
    assert (result.returncode, result.stdout) == (0, "from second\n"), result.stderr


def test_an_empty_path_entry_means_the_working_directory(dockyard, rootfs):
    os.makedirs(os.path.join(rootfs, "tools"))
    with open(os.path.join(rootfs, "tools", "hello"), "w") as f:
        f.write("#!/bin/sh\necho hello from $(pwd)\n")
    os.chmod(os.path.join(rootfs, "tools", "hello"), 0o755)
    result = dockyard("run", "-e", "PATH=/bin:", "-w", "/tools", "--rootfs", rootfs, "hello")
    assert (result.returncode, result.stdout) == (0, "hello from /tools\n"), result.stderr


# --- chapter 3: Docker's sizes (exercise 3.1) --------------------------------------------------

@pytest.mark.parametrize("size, expected", [
    ("65536k", 64 << 20), ("64MiB", 64 << 20), ("1.5g", 3 << 29), ("100663296", 96 << 20), ("80M", 80 << 20),
])
def test_memory_sizes_in_dockers_units_reach_the_kernel_in_bytes(dockyard, rootfs, size, expected):
    container = Running(dockyard, rootfs, "--memory", size)
    try:
        written = cgroup_file(container.id, "memory/memory.limit_in_bytes", "memory.max")
    finally:
        container.stop()
    # v1 rounds a limit down to whole pages; these sizes are whole pages already.
    assert int(written) == expected, f"--memory {size} wrote {written} ({'v2' if V2 else 'v1'})"
