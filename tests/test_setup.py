"""The set-up scripts, tried as a new user would: tools/packages.sh, tools/quickstart.sh, tools/test.sh.

They run as root on the user's own checkout, so what they leave there and what they start on the
machine is part of their promise.
"""

import os
import shutil
import subprocess

from conftest import NOBODY, REPO, needs_root

pytestmark = needs_root

STUBBED = ("dpkg-query", "apt-get", "systemctl", "update-rc.d", "invoke-rc.d")


def stub_system_tools(directory: str, log: str) -> dict:
    """An environment whose PATH finds logging stand-ins for the package and service tools."""
    os.makedirs(directory)
    for name in STUBBED:
        answer = 'printf "install ok installed"' if name == "dpkg-query" else "true"
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\necho "{name} $*" >> {log}\n{answer}\n')
        os.chmod(path, 0o755)
    return {**os.environ, "PATH": f"{directory}:{os.environ['PATH']}"}


def test_packages_keep_debians_registry_service_masked_and_disabled(tmp_path):
    log = str(tmp_path / "calls")
    env = stub_system_tools(str(tmp_path / "bin"), log)
    result = subprocess.run(["sh", os.path.join(REPO, "tools", "packages.sh"), "test"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with open(log) as f:
        calls = f.read().splitlines()
    assert "systemctl mask docker-registry.service" in calls
    assert "update-rc.d docker-registry disable" in calls
    assert not any(call.startswith("apt-get") for call in calls)  # everything is installed already


def users_checkout(tmp_path) -> str:
    """A copy of the repository owned by an ordinary user, as a clone in their home would be."""
    copy = str(tmp_path / "checkout")
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".git", "__pycache__", "docs", "bench"))
    os.chmod(str(tmp_path), 0o755)
    for directory, subdirs, files in os.walk(copy):
        for name in [directory, *(os.path.join(directory, n) for n in files)]:
            os.lchown(name, NOBODY, NOBODY)
    return copy


def root_owned(directory: str) -> list[str]:
    return [os.path.join(d, n) for d, subdirs, files in os.walk(directory) for n in subdirs + files
            if os.lstat(os.path.join(d, n)).st_uid == 0]


def cached_byte_code(copy: str) -> list[str]:
    mirror = "/var/cache/dockyard/pycache" + copy
    return [n for d, _, files in os.walk(mirror) for n in files if n.endswith(".pyc")]


def test_the_quickstart_as_root_leaves_no_root_owned_file_in_the_users_checkout(tmp_path):
    copy = users_checkout(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    try:
        result = subprocess.run(["sh", os.path.join(copy, "tools", "quickstart.sh")], env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Hello from inside a Dockyard container!" in result.stdout
        assert root_owned(copy) == []
        assert cached_byte_code(copy)  # the byte-code is still cached, outside the checkout
    finally:
        shutil.rmtree("/var/cache/dockyard/pycache" + copy, ignore_errors=True)


def test_the_test_script_as_root_leaves_no_root_owned_file_in_the_users_checkout(tmp_path):
    copy = users_checkout(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    try:
        result = subprocess.run(["sh", os.path.join(copy, "tools", "test.sh"), "--collect-only", "-q",
                                 "-p", "no:cacheprovider", os.path.join(copy, "tests", "test_run.py")],
                                env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert root_owned(copy) == []
        assert cached_byte_code(copy)
    finally:
        shutil.rmtree("/var/cache/dockyard/pycache" + copy, ignore_errors=True)
