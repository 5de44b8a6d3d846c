# chapter: 07
"""Variable substitution, by the rules of Docker's shell-word lexer.

ENV, ARG, LABEL, COPY, ADD, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL and
FROM expand `$name` and `${name...}` before they act; RUN, CMD and
ENTRYPOINT leave that to the shell in the container. The lexer is a small
subset of sh(1): single quotes are literal, double quotes still expand, the
escape character (backslash, or backtick after `# escape=`) protects the
next one, and unquoted expansions split into words.

    ${v:-w} ${v-w}   w if v is unset (or, with the colon, empty)
    ${v:+w} ${v+w}   w if v is set (and, with the colon, not empty)
    ${v:?msg}        fail with msg if v is unset or empty
    ${v#p} ${v##p}   v without its shortest / longest prefix matching p
    ${v%p} ${v%%p}   v without its shortest / longest suffix matching p
    ${v/p/r}         v with the first (// every) match of p replaced by r
"""

import re
from typing import Callable, Mapping

EOF = ""
SPECIAL_PARAMS = "@*#?-$!0"


class ExpandError(Exception):
    """A word that cannot be expanded, such as `${v:?}` of an unset v."""


class Words:
    """Collects the words of an expansion: unquoted blanks split, quotes don't."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def add_char(self, ch: str) -> None:
        """An unquoted character: a blank ends the current word."""
        if not ch.isspace():
            self.add_raw(ch)
        elif self.in_word and self.word:
            self.words.append(self.word)
            self.word, self.in_word = "", False

    def add_split(self, text: str) -> None:
        """An unquoted expansion: its blanks split words too."""
        for ch in text:
            self.add_char(ch)

    def add_raw(self, text: str) -> None:
        """Quoted text: kept whole, blanks and all."""
        self.word += text
        self.in_word = True

    def result(self) -> list[str]:
        """The finished list of words."""
        return self.words + ([self.word] if self.word else [])


class Lexer:
    """Expands one word (ProcessWord) or a list of words (ProcessWords)."""

    def __init__(self, escape: str = "\\", raw_quotes: bool = False, raw_escapes: bool = False,
                 skip_unset: bool = False) -> None:
        self.escape, self.raw_quotes, self.raw_escapes = escape, raw_quotes, raw_escapes
        self.skip_unset = skip_unset

    def word(self, text: str, env: Mapping[str, str]) -> str:
        """Expand `text` into one string: quotes removed, variables substituted."""
        return self._run(text, env)[0]

    def words(self, text: str, env: Mapping[str, str]) -> list[str]:
        """Expand `text` into words, splitting at unquoted blanks."""
        return self._run(text, env)[1]

    def _run(self, text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
        self.text, self.pos, self.env = text, 0, env
        return self.stop_on(EOF, self.raw_escapes)

    # --- the scanner -------------------------------------------------------------

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else EOF

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """Read up to the unquoted `stop` (or the end when stop is EOF)."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        result, words = [], Words()
        handlers: dict[str, Callable[[], str]] = {
            "$": self.dollar, "'": self.single_quoted, '"': self.double_quoted}
        while (ch := self.peek()) != EOF:
            if stop and ch == stop:
                self.next()
                return "".join(result), words.result()
            if ch in handlers:
                value = handlers[ch]()
                result.append(value)
                words.add_split(value) if ch == "$" else words.add_raw(value)
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    words.add_raw(ch)
                    result.append(ch)
                ch = self.next()
                if ch == EOF:
                    break
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise ExpandError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def single_quoted(self) -> str:
        """'...': every character literal, no escapes at all (as in sh)."""
        quote = self.next()
        out = [quote] if self.raw_quotes else []
        while (ch := self.next()) != "'":
            if ch == EOF:
                raise ExpandError("unexpected end of statement while looking for matching single-quote")
            out.append(ch)
        return "".join(out + ([ch] if self.raw_quotes else []))

    def double_quoted(self) -> str:
        """"...": variables expand; the escape protects only " $ and itself."""
        quote = self.next()
        out = [quote] if self.raw_quotes else []
        while True:
            ch = self.peek()
            if ch == EOF:
                raise ExpandError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out + ([ch] if self.raw_quotes else []))
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                if self.peek() == EOF:
                    continue
                if self.peek() in ('"', "$", self.escape):
                    ch = self.next()
                elif self.raw_escapes:
                    continue
            out.append(ch)

    # --- $name and ${name...} ---------------------------------------------------------

    def name(self) -> str:
        """A variable name: letters, digits, _; or digits; or one special character."""
        ch = self.peek()
        if ch.isdigit():
            start = self.pos
            while self.peek().isdigit():
                self.next()
            return self.text[start:self.pos]
        if ch and ch in SPECIAL_PARAMS:
            return self.next()
        start = self.pos
        while (ch := self.peek()) and (ch.isalnum() or ch == "_"):
            self.next()
        return self.text[start:self.pos]

    def lookup(self, name: str) -> str | None:
        return self.env.get(name)

    def dollar(self) -> str:
        """Expand the `$...` at the cursor."""
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None and self.skip_unset:
                return "$" + name
            return value or ""
        self.next()
        if self.peek() == EOF:
            raise ExpandError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ExpandError("syntax error: bad substitution")
        return self.braced(self.name())

    def braced(self, name: str) -> str:
        """The rest of `${name...}`, after the name."""
        op = self.next()
        if op == EOF:
            raise ExpandError("syntax error: missing '}'")
        value = self.lookup(name)
        if op == "}":
            return "${%s}" % name if value is None and self.skip_unset else value or ""
        if op == "/":
            return self.replace(name, value)
        colon = op == ":"
        if colon:
            op = self.next()
        if op not in ("+", "-", "?", "#", "%"):
            raise ExpandError(f"unsupported modifier ({':' if colon else ''}{op}) in substitution")
        if colon and op in "#%":
            raise ExpandError(f"unsupported modifier (:{op}) in substitution")
        word = self.closing_word("}", op in "#%")
        if value is None and self.skip_unset:
            return "${%s%s%s%s}" % (name, ":" if colon else "", op, word)
        return modify(name, value, op, colon, word)

    def closing_word(self, stop: str, raw_escapes: bool) -> str:
        """Read a modifier's word up to `stop`, reporting a missing stop as sh does."""
        try:
            return self.stop_on(stop, raw_escapes)[0]
        except ExpandError:
            if self.peek() == EOF:
                raise ExpandError(f"syntax error: missing '{stop}'" +
                                  (" in ${}" if stop == "/" else "")) from None
            raise

    def replace(self, name: str, value: str | None) -> str:
        """`${v/p/r}` and `${v//p/r}`: replace the first or every match of p."""
        every = self.peek() == "/"
        if every:
            self.next()
        pattern = self.closing_word("/", True)
        replacement = self.closing_word("}", True)
        if value is None and self.skip_unset:
            return "${%s/%s/%s}" % (name, pattern, replacement)
        regex = pattern_regex(pattern, greedy=True)
        return regex.sub(lambda _m: replacement, value or "", count=0 if every else 1)


def modify(name: str, value: str | None, op: str, colon: bool, word: str) -> str:
    """Apply one of the modifiers - + ? # % to a variable's value."""
    # >>> exercise 7.4: ${VAR:-default} and the other modifiers
    # hint: "unset" is None, or "" as well with a colon (${v:-x} vs ${v-x}). "-": the word if unset,
    # hint: else the value; "+": the word unless unset; "?": ExpandError(f"{name}: {word or ...}") if
    # hint: unset. "#" and "%" trim a prefix or suffix matching the word (doubled: the longest match)
    # hint: with trim_prefix / trim_suffix.
    # test: test_dockerfile_expand.py::test_a_word_expands_as_docker_expands_it[${u:-def}-def]
    # test: test_dockerfile_expand.py::test_a_word_expands_as_docker_expands_it[${e-def}-]
    # test: test_dockerfile_expand.py::test_a_word_expands_as_docker_expands_it[${v:+alt}-alt]
    # test: test_dockerfile_expand.py::test_a_word_expands_as_docker_expands_it[${p##*/}-x.tar.gz]
    # test: test_dockerfile_expand.py::test_a_bad_word_is_an_error_that_says_why[${e:?must be set}-e: must be set]
    # stops: every word with a ${VAR:...} modifier
    unset = value is None or (colon and value == "")
    if op == "-":
        return word if unset else value or ""
    if op == "+":
        return "" if unset else word
    if op == "?":
        if unset:
            default = "is not allowed to be empty" if value == "" else "is not allowed to be unset"
            raise ExpandError(f"{name}: {word or default}")
        return value or ""
    greedy = word[:1] == op
    pattern = word[1:] if greedy else word
    if op == "#":
        return trim_prefix(value or "", pattern, greedy)
    return trim_suffix(value or "", pattern, greedy)
    # <<< exercise 7.4


def pattern_regex(pattern: str, greedy: bool) -> re.Pattern[str]:
    """Turn a shell pattern (* ? and backslash escapes) into a regular expression."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            if i < len(pattern) and pattern[i] in "}/":
                continue  # `\}` and `\/` only escape the ${} syntax
            if i >= len(pattern) or pattern[i] not in "*?\\":
                raise ExpandError(f"invalid pattern ({pattern}) in substitution: "
                                  f"invalid escape '\\{pattern[i:i + 1]}'")
            out.append(re.escape(pattern[i]))
            i += 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def trim_prefix(value: str, pattern: str, greedy: bool) -> str:
    """Remove the shortest (greedy: longest) prefix of value matching pattern."""
    found = pattern_regex(pattern, greedy).match(value)
    return value[found.end():] if found else value


def trim_suffix(value: str, pattern: str, greedy: bool) -> str:
    """Remove the shortest (greedy: longest) suffix of value matching pattern."""
    # A regex finds the leftmost match; reversing both finds the rightmost one.
    reversed_pattern = "".join(reversed(re.findall(r"\\.|.", pattern, re.DOTALL)))
    return trim_prefix(value[::-1], reversed_pattern, greedy)[::-1]


def expand_word(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand one word of an instruction (ENV value, COPY path, WORKDIR ...)."""
    return Lexer(escape).word(text, env)


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand and split into words, as unquoted shell text is."""
    return Lexer(escape).words(text, env)
