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


def _is_name_char(ch: str, first: bool) -> bool:
    return ch == "_" or (ch.isascii() and (ch.isalpha() or (ch.isdigit() and not first)))


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
    tokens: list[Word | Op] = []
    parts: list[str | Var] = []
    literal: list[str] = []  # characters of the literal part being built
    in_word = quoted = False
    i, n = 0, len(line)

    def flush_literal() -> None:
        if literal:
            parts.append("".join(literal))
            literal.clear()

    def end_word() -> None:
        nonlocal in_word, quoted
        flush_literal()
        if in_word:
            tokens.append(Word(tuple(parts), quoted))
        parts.clear()
        in_word = quoted = False

    def read_var(i: int) -> tuple[Var | None, int]:
        # At line[i] == "$": a Var and the index after it, or None if this `$` is literal.
        if i + 1 < n and line[i + 1] == "?":
            return Var("?"), i + 2
        if i + 1 < n and line[i + 1] == "{":
            close = line.find("}", i + 2)
            if close == -1:
                raise ValueError(f"unterminated ${{ in {line!r}")
            return Var(line[i + 2 : close]), close + 1
        j = i + 1
        while j < n and _is_name_char(line[j], first=j == i + 1):
            j += 1
        return (Var(line[i + 1 : j]), j) if j > i + 1 else (None, i + 1)

    while i < n:
        ch = line[i]
        if ch in " \t\n":
            end_word()
            i += 1
            continue
        # "2>&1" is an operator only where a new word would start: `a2>&1` is not it.
        op = next((o for o in OPERATORS if line.startswith(o, i)), None)
        if op is not None and (op != "2>&1" or not in_word):
            end_word()
            tokens.append(Op(op))
            i += len(op)
            continue
        in_word = True
        if ch == "\\":
            # A backslash at the very end of the line stays a backslash, as in bash -c.
            literal.append(line[i + 1] if i + 1 < n else "\\")
            i += 2
        elif ch == "'":
            close = line.find("'", i + 1)
            if close == -1:
                raise ValueError(f"unterminated single quote in {line!r}")
            literal.append(line[i + 1 : close])
            quoted = True
            i = close + 1
        elif ch == '"':
            quoted = True
            i += 1
            while True:
                if i >= n:
                    raise ValueError(f"unterminated double quote in {line!r}")
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and line[i + 1] in '$`"\\':
                    literal.append(line[i + 1])  # inside "..." only these can be escaped
                    i += 2
                elif c == "$":
                    var, i = read_var(i)
                    if var is None:
                        literal.append("$")
                    else:
                        flush_literal()
                        parts.append(var)
                else:
                    literal.append(c)
                    i += 1
        elif ch == "$":
            var, i = read_var(i)
            if var is None:
                literal.append("$")
            else:
                flush_literal()
                parts.append(var)
        else:
            literal.append(ch)
            i += 1
    end_word()
    return tokens


def expand(word: Word, variables: Mapping[str, str]) -> str | None:
    """The word's text with each Var replaced by its value ("" if unset).

    Returns None when an unquoted word expands to the empty string: bash drops such a word
    (`echo $UNSET x` runs echo with one argument). No field splitting, no globbing.
    """
    # Vars with no value become "", like bash without `set -u`.
    text = "".join(p if isinstance(p, str) else variables.get(p.name, "") for p in word.parts)
    return None if text == "" and not word.quoted else text


@dataclass
class _Command:
    words: list[Word] = field(default_factory=list)
    redirections: list[tuple[str, Word | None]] = field(default_factory=list)


def _parse(tokens: list[Word | Op]) -> list[tuple[str, list[_Command]]]:
    """Tokens -> [(connector, pipeline)], the connector being ";", "&&" or "||"."""
    lists: list[tuple[str, list[_Command]]] = []
    connector, pipeline, command = ";", [], _Command()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if isinstance(tok, Word):
            command.words.append(tok)
        elif tok == "2>&1":
            command.redirections.append((tok, None))
        elif tok in REDIRECTIONS:
            target = tokens[i + 1] if i + 1 < len(tokens) else None
            if not isinstance(target, Word):
                raise ValueError(f"syntax error: {tok} needs a file name")
            command.redirections.append((tok, target))
            i += 1
        else:  # | ; && ||
            if not command.words:
                raise ValueError(f"syntax error near {tok!r}")
            pipeline.append(command)
            command = _Command()
            if tok != "|":
                lists.append((connector, pipeline))
                connector, pipeline = tok, []
        i += 1
    if command.words:
        pipeline.append(command)
    elif pipeline or connector in ("&&", "||"):
        raise ValueError(f"syntax error: nothing after {'|' if pipeline else connector}")
    if pipeline:
        lists.append((connector, pipeline))
    return lists


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
        - `a | b | c`: all at once, connected by pipes; the status is c's.
        - Redirections, applied left to right after the pipes: `< f`, `> f`, `>> f`, `2>&1`.
        - Builtins (alone in their pipeline, no redirections): `cd [dir]` ($HOME without a
          dir; status 1 if it fails), `exit [n]` (default: the last status), `export
          NAME=value`. Other commands are looked up on the PATH in self.vars and get
          self.vars as their environment; one that cannot run gives 127.
        - `$?` and `$NAME` are expanded when the command runs, not when the line is read.
        """
        try:
            lists = _parse(tokenize(line))
        except ValueError as exc:
            os.write(2, f"mini_shell: {exc}\n".encode())
            self.status = 2
            return self.status
        for connector, pipeline in lists:
            if self.exited:
                break
            # Left to right with equal precedence: `a || b && c` is `(a || b) && c`. A skipped
            # pipeline leaves $? as it was, which is what the next connector then looks at.
            if (connector == "&&" and self.status != 0) or (connector == "||" and self.status == 0):
                continue
            self.status = self._run_pipeline(pipeline)
        return self.status

    def run_script(self, text: str) -> int:
        """Run each line of `text` in order until the end or `exit`; return the exit status."""
        for line in text.splitlines():
            self.run(line)
            if self.exited:
                break
        return self.status

    # --- builtins ---------------------------------------------------------------------

    def _builtin(self, name: str, args: list[str]) -> int:
        # Builtins run inside the shell process: a child could not change the shell's own
        # directory or variables.
        if name == "cd":
            target = args[0] if args else self.vars.get("HOME", "/")
            try:
                os.chdir(target)
            except OSError as exc:
                os.write(2, f"mini_shell: cd: {target}: {exc.strerror}\n".encode())
                return 1
            self.vars["OLDPWD"], self.vars["PWD"] = self.vars.get("PWD", ""), os.getcwd()
            return 0
        if name == "exit":
            self.exited = True
            try:
                return int(args[0]) & 0xFF if args else self.status
            except ValueError:
                os.write(2, f"mini_shell: exit: {args[0]}: numeric argument required\n".encode())
                return 2
        for arg in args:  # export NAME=value [NAME=value ...]; a bare NAME changes nothing here
            name_, sep, value = arg.partition("=")
            if sep:
                self.vars[name_] = value
        return 0

    # --- running commands ---------------------------------------------------------------

    def _argv(self, command: _Command) -> list[str]:
        # Expand now, not when tokenizing: `false; echo $?` must see false's status.
        variables = {**self.vars, "?": str(self.status)}
        return [w for w in (expand(word, variables) for word in command.words) if w is not None]

    def _run_pipeline(self, pipeline: list[_Command]) -> int:
        argvs = [self._argv(c) for c in pipeline]
        if len(pipeline) == 1 and argvs[0] and argvs[0][0] in BUILTINS:
            return self._builtin(argvs[0][0], argvs[0][1:])
        sys.stdout.flush()
        sys.stderr.flush()
        pids, read_prev = [], None
        for k, (command, argv) in enumerate(zip(pipeline, argvs, strict=True)):
            last = k == len(pipeline) - 1
            read_next, write_next = (None, None) if last else os.pipe()
            pid = os.fork()
            if pid == 0:
                self._child(command, argv, read_prev, write_next, read_next)
            pids.append(pid)
            # The parent closes its copies at once, or a reader never sees EOF.
            if read_prev is not None:
                os.close(read_prev)
            if write_next is not None:
                os.close(write_next)
            read_prev = read_next
        statuses = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
        code = statuses[-1]  # without pipefail: the last command's status
        return 128 - code if code < 0 else code

    def _child(
        self,
        command: _Command,
        argv: list[str],
        stdin: int | None,
        stdout: int | None,
        unused: int | None,
    ) -> None:
        """In the forked child: pipes, then redirections left to right, then exec. Never returns."""
        try:
            if unused is not None:
                os.close(unused)  # the read end of our own output pipe belongs to the next command
            if stdin is not None:
                os.dup2(stdin, 0)
                os.close(stdin)
            if stdout is not None:
                os.dup2(stdout, 1)
                os.close(stdout)
            variables = {**self.vars, "?": str(self.status)}
            # In order, after the pipes: `> f 2>&1` sends both to f, `2>&1 > f` only stdout.
            for op, target in command.redirections:
                if op == "2>&1":
                    os.dup2(1, 2)
                    continue
                path = expand(target, variables) if target is not None else None
                if path is None:
                    os.write(2, b"mini_shell: ambiguous redirect\n")
                    os._exit(1)
                flags = {
                    "<": os.O_RDONLY,
                    ">": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                    ">>": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                }[op]
                try:
                    fd = os.open(path, flags, 0o666)
                except OSError as exc:
                    os.write(2, f"mini_shell: {path}: {exc.strerror}\n".encode())
                    os._exit(1)
                os.dup2(fd, 0 if op == "<" else 1)
                os.close(fd)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it; exec would keep that
            if not argv:
                os._exit(0)  # a command that expanded to nothing, like `$EMPTY`
            os.execvpe(argv[0], argv, self.vars)
        except (OSError, ValueError):  # ValueError: Python refuses an empty program name
            os.write(2, f"mini_shell: {argv[0]}: command not found\n".encode())
        finally:
            os._exit(COMMAND_NOT_FOUND)  # whatever happened, never return into the shell
