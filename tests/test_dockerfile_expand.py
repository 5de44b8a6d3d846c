"""Chapter 07 on: variables expand by Docker's rules (dockerfile/expand.py).

The CLI reaches expansion only through a build, which needs root and an
image; these edge cases are checked on the implementation's own lexer.
"""

import importlib
import os
import sys

import pytest

ENV = {"v": "hello world", "e": "", "p": "/usr/local/bin/x.tar.gz", "a": "aXbXc"}


@pytest.fixture
def expand(impl):
    sys.path.insert(0, os.path.dirname(impl.path))
    try:
        return importlib.import_module(f"{impl.name}.dockerfile.expand")
    finally:
        sys.path.pop(0)


@pytest.mark.parametrize("word, expected", [
    ("$v", "hello world"), ("${v}", "hello world"), ("x${v}y", "xhello worldy"),
    ("${u:-def}", "def"), ("${e:-def}", "def"), ("${e-def}", ""), ("${u-def}", "def"),
    ("${v:+alt}", "alt"), ("${e:+alt}", ""), ("${e+alt}", "alt"), ("${u+alt}", ""),
    ("${u:-${v}}", "hello world"), ("${e?}", ""),
    ("${p#*/}", "usr/local/bin/x.tar.gz"), ("${p##*/}", "x.tar.gz"),
    ("${p%.*}", "/usr/local/bin/x.tar"), ("${p%%.*}", "/usr/local/bin/x"),
    ("${p#/usr}", "/local/bin/x.tar.gz"), ("${p%x}", "/usr/local/bin/x.tar.gz"),
    ("${a/X/-}", "a-bXc"), ("${a//X/-}", "a-b-c"), ("${a/X*/}", "a"),
    ("\\$v", "$v"), ("'$v'", "$v"), ('"$v"', "hello world"), ('"\\$v"', "$v"),
    ('"a\\nb"', "a\\nb"), ("a$", "a$"), ("x\\", "x"), ("$unset", ""), ("a\\ b", "a b"),
])
def test_a_word_expands_as_docker_expands_it(expand, word, expected):
    assert expand.expand_word(word, ENV) == expected


@pytest.mark.parametrize("word, message", [
    ("${u:?}", "u: is not allowed to be unset"), ("${e:?must be set}", "e: must be set"),
    ("${v", "missing '}'"), ("${}", "bad substitution"), ("${v:#x}", "unsupported modifier"),
    ('"abc', "matching double-quote"), ("'abc", "matching single-quote"),
])
def test_a_bad_word_is_an_error_that_says_why(expand, word, message):
    with pytest.raises(expand.ExpandError, match=message.replace("$", "\\$").replace("{", "\\{")):
        expand.expand_word(word, ENV)


def test_unquoted_expansions_split_into_words_and_quoted_ones_do_not(expand):
    assert expand.expand_words('$v "$v" \'a b\'', ENV) == ["hello", "world", "hello world", "a b"]


def test_the_backtick_escape_leaves_backslashes_alone(expand):
    assert expand.expand_word("c:\\dir `$v", ENV, escape="`") == "c:\\dir $v"
