"""final/ only: `run -t` gives the container a terminal, and -it relays keys to it."""

from conftest import needs_root

pytestmark = needs_root


def test_t_gives_the_container_a_terminal_and_term(dockyard, rootfs):
    result = dockyard("run", "-t", "--rootfs", rootfs, "sh", "-c", "test -t 0 && test -t 1 && echo terminal; echo $TERM")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["terminal", "xterm"]


def test_it_relays_what_the_user_types_and_returns_the_exit_code(dockyard, rootfs):
    result = dockyard("run", "-i", "-t", "--rootfs", rootfs, "sh", input="echo typed-$((6*7))\nexit 3\n")
    assert result.returncode == 3
    assert "typed-42" in result.stdout


def test_without_t_there_is_no_terminal(dockyard, rootfs):
    result = dockyard("run", "--rootfs", rootfs, "sh", "-c", "test -t 1 || echo no-terminal")
    assert result.stdout == "no-terminal\n"


def test_the_long_forms_interactive_and_tty_mean_i_and_t(dockyard, rootfs):
    result = dockyard("run", "--interactive", "--tty", "--rootfs", rootfs, "sh", input="test -t 0 && echo tty-$((6*7))\nexit 4\n")
    assert result.returncode == 4
    assert "tty-42" in result.stdout
