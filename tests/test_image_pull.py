"""Beyond the book: `run` pulls an image it does not have (--pull missing|always|never), as Docker does.

Each test starts our registry on loopback, pushes busybox to it and removes it from the store, so
the image is there to pull and not there to run.
"""

import pytest

from conftest import needs_root, failure_code
from registry_helpers import our_registry

pytestmark = needs_root


@pytest.fixture
def pushed(dockyard, tmp_path, busybox_rootfs):
    """The name of a busybox image that the registry has and the store has not."""
    with our_registry(dockyard, tmp_path) as (addr, _, _):
        name = f"{addr}/tools/busybox:1"
        assert dockyard("import", "-c", 'CMD ["sh"]', busybox_rootfs, name).returncode == 0
        assert dockyard("push", name).returncode == 0
        assert dockyard("rmi", name).returncode == 0
        yield name


def test_run_pulls_an_image_it_does_not_have_then_runs_it(dockyard, pushed):
    result = dockyard("run", "--rm", pushed, "echo", "hi")
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr  # the pull's lines go to stderr
    assert f"Unable to find image '{pushed}' locally" in result.stderr
    assert "1: Pulling from tools/busybox" in result.stderr and "Downloaded newer image" in result.stderr
    again = dockyard("run", "--rm", pushed, "echo", "hi")
    assert again.stdout == "hi\n" and "Pulling" not in again.stderr  # missing: only when it is missing


def test_pull_never_refuses_a_missing_image_and_pull_always_asks_the_registry_first(dockyard, pushed):
    never = dockyard("run", "--rm", "--pull", "never", pushed, "true")
    assert never.returncode == failure_code(never) and "no such image" in never.stderr and "hint:" in never.stderr
    assert "Pulling" not in never.stderr
    assert dockyard("pull", pushed).returncode == 0
    always = dockyard("run", "--rm", "--pull", "always", pushed, "echo", "hi")
    assert always.stdout == "hi\n" and "Unable to find" not in always.stderr
    assert f"Status: Image is up to date for {pushed}" in always.stderr


def test_pull_says_whether_it_downloaded_a_newer_image_or_the_image_is_up_to_date(dockyard, pushed):
    first = dockyard("pull", pushed)
    assert f"Status: Downloaded newer image for {pushed}" in first.stdout, first.stderr
    second = dockyard("pull", pushed)
    assert f"Status: Image is up to date for {pushed}" in second.stdout, second.stderr


def test_run_of_an_image_no_registry_has_fails_with_a_hint(dockyard, pushed):
    missing = pushed.replace("busybox:1", "nothing:1")
    result = dockyard("run", "--rm", missing, "true")
    assert result.returncode == failure_code(result) and f"Unable to find image '{missing}' locally" in result.stderr
    assert "error:" in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr


def test_build_pulls_a_missing_base_and_with_pull_asks_the_registry_again(dockyard, pushed, tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {pushed}\nRUN echo built > /built\n")
    first = dockyard("build", "-t", "child", str(context), timeout=120)
    assert first.returncode == 0 and "Downloaded newer image" in first.stdout, first.stdout + first.stderr
    again = dockyard("build", "--pull", "-t", "child", str(context), timeout=120)
    assert again.returncode == 0 and f"Image is up to date for {pushed}" in again.stdout, again.stdout + again.stderr
    quiet = dockyard("build", "-t", "child", str(context), timeout=120)
    assert quiet.returncode == 0 and "Pulling" not in quiet.stdout
    result = dockyard("run", "--rm", "child", "cat", "/built")
    assert result.stdout == "built\n", result.stderr
