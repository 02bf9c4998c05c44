"""A mini shell: quotes, $-expansion, pipes, redirections, && and ||, and the builtins cd, exit, export."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

OPERATORS = ("2>&1", "&&", "||", ">>", "|", ";", "<", ">")  # longest first: ">>" before ">"
REDIRECTIONS = ("<", ">", ">>", "2>&1")
BUILTINS = ("cd", "exit", "export")
COMMAND_NOT_FOUND = 127


class Op(str):
    """An operator token: one of OPERATORS. A quoted '|' is a Word, never an Op."""


@dataclass(frozen=True)
class Var:
    """A variable reference inside a word: $NAME, ${NAME}, or $? (name "?")."""

    name: str


@dataclass(frozen=True)
class Word:
    """One word, quotes removed: literal strings and Vars, in order.

    `quoted` is True if any part of the word was quoted: `""` is an empty argument, while an
    unquoted `$EMPTY` expands to nothing and disappears.
    """

    parts: tuple[str | Var, ...]
    quoted: bool = False


def tokenize(line: str) -> list[Word | Op]:
    """Split a command line into words and operators, like bash does before expansion.

    - Whitespace separates words; operators separate words too (`a|b` is three tokens).
    - 'single quotes' keep everything literally; "double quotes" keep everything except
      `$` expansions, and a backslash there escapes only $ ` " \\ ; outside quotes a
      backslash makes the next character literal.
    - $NAME, ${NAME} and $? become Var parts (outside single quotes); a `$` followed by
      anything else is a literal `$`.
    - Raises ValueError on an unterminated quote, or a `${` without its `}`.

    >>> tokenize("echo 'a b'|wc")
    [Word(parts=('echo',), quoted=False), Word(parts=('a b',), quoted=True), '|', \
Word(parts=('wc',), quoted=False)]
    """
    # TODO: walk the line character by character, with a state for "inside '...'" and
    # "inside \"...\"". A quote does not end the word: a'b c'd is ONE word.
    raise NotImplementedError("tokenize")


def expand(word: Word, variables: Mapping[str, str]) -> str | None:
    """The word's text with each Var replaced by its value ("" if unset).

    Returns None when an unquoted word expands to the empty string: bash drops such a word
    (`echo $UNSET x` runs echo with one argument). No field splitting, no globbing.
    """
    # TODO: join the parts; mind the unquoted-and-empty case.
    raise NotImplementedError("expand")


class Shell:
    """A shell's state: variables (exported to every command), the last status, exited or not.

    >>> sh = Shell({"PATH": os.environ["PATH"]})
    >>> sh.run("export GREETING=hi && false || echo $GREETING $?")   # prints "hi 1"
    0
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.vars: dict[str, str] = dict(os.environ if env is None else env)
        self.status = 0  # $?
        self.exited = False  # set by the exit builtin: run() and run_script() stop

    def run(self, line: str) -> int:
        """Run one command line and return its status, which is also the new `$?`.

        Commands read the shell's fd 0 and write its fds 1 and 2 unless redirected. A syntax
        error (unterminated quote, `| |`) prints a message to fd 2 and gives status 2.

        - `a ; b` runs both; `a && b` runs b if a succeeded; `a || b` runs b if a failed;
          they group left to right with equal precedence.
        - `a | b | c`: all at once, connected by pipes; the status is c's. A command killed
          by signal N has status 128 + N; give children SIGPIPE back as SIG_DFL.
        - Redirections, applied left to right after the pipes: `< f`, `> f`, `>> f`, `2>&1`.
          Files are created with mode 0o666 (less the umask). A file that cannot be opened,
          or a file name that expands to nothing: a message on fd 2, status 1, no exec.
        - Builtins (alone in their pipeline, no redirections): `cd [dir]` ($HOME without a
          dir; status 1 if it fails), `exit [n]` (default: the last status; n & 0xFF; not a
          number: a message on fd 2 and status 2), `export NAME=value` (split at the first
          `=`). Other commands are looked up on the PATH in self.vars and get self.vars as
          their environment; one that cannot run (`""` too) gives 127 and a message on fd 2.
          A command whose words all expand to nothing succeeds.
        - `$?` and `$NAME` are expanded when the command runs, not when the line is read.
        - The line is parsed whole first: a syntax error (`| |`, a leading `;`, nothing after
          `|`, `&&`, `||` or a redirection) runs nothing of it.
        """
        # TODO: tokenize, parse into pipelines joined by ; && ||, run them in order.
        # TODO: run builtins in this process; fork one child per command otherwise (pipes,
        # redirections, SIGPIPE back to SIG_DFL, execvpe, os._exit(127) in a finally).
        raise NotImplementedError("Shell.run")

    def run_script(self, text: str) -> int:
        """Run each line of `text` in order until the end or `exit`; return the exit status.

        The exit status is what a process can exit with, 0-255: the last status, or exit's.
        """
        # TODO: one run() per line; stop early once exit was run.
        raise NotImplementedError("Shell.run_script")
