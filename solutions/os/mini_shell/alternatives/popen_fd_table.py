"""A mini shell: quotes, $-expansion, pipes, redirections, && and ||, and the builtins cd, exit, export.

This design: a regular-expression scanner for the words, a left-leaning tree for `&&`/`||`
evaluated recursively, and no fork in Python at all. The redirections of a command are played,
in order, on a model of its three descriptors in the shell process (`2>&1` copies whatever fd 1
is at that moment); subprocess.Popen then gets the result as stdin, stdout and stderr.
"""

from __future__ import annotations

import os
import re
import subprocess
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
    """One word, quotes removed: literal strings and Vars, in order."""

    parts: tuple[str | Var, ...]
    quoted: bool = False


# A ${ that the braced form did not match has no closing }: bash -n refuses it, and so do we.
_VAR = r"\$(?:(?P<status>\?)|\{(?P<braced>[^}]*)\}|(?P<name>[A-Za-z_][A-Za-z0-9_]*))|(?P<unclosed>\$\{)"
_OUTSIDE = re.compile(
    r"(?P<blank>[ \t\n]+)"
    r"|(?P<op>&&|\|\||>>|[|;<>])"
    r"|'(?P<single>[^']*)'"
    r"|(?P<double>\")"
    r"|\\(?P<escaped>.)"
    r"|(?P<trailing>\\$)"
    r"|" + _VAR + r"|(?P<plain>[^ \t\n|;<>'\"\\$&]+|&|\$)",
    re.DOTALL,
)
_INSIDE_DOUBLE = re.compile(r"(?P<end>\")|\\(?P<escaped>[$`\"\\])|" + _VAR + r"|(?P<plain>[^\"\\$]+|\\|\$)", re.DOTALL)


def _var(m: re.Match[str]) -> Var:
    if m["status"]:
        return Var("?")
    return Var(m["braced"] if m["braced"] is not None else m["name"])


def tokenize(line: str) -> list[Word | Op]:
    """Split a command line into words and operators, like bash does before expansion."""
    tokens: list[Word | Op] = []
    parts: list[str | Var] = []
    started = quoted = False

    def add(part: str | Var) -> None:
        nonlocal started
        started = True
        if isinstance(part, str) and parts and isinstance(parts[-1], str):
            parts[-1] += part
        elif part != "":
            parts.append(part)

    def finish() -> None:
        nonlocal started, quoted
        if started:
            tokens.append(Word(tuple(parts), quoted))
        parts.clear()
        started = quoted = False

    pos = 0
    while pos < len(line):
        if not started and line.startswith("2>&1", pos):
            finish()
            tokens.append(Op("2>&1"))
            pos += 4
            continue
        m = _OUTSIDE.match(line, pos)
        if m is None:  # a ' with no closing '
            raise ValueError(f"unterminated single quote in {line!r}")
        pos = m.end()
        if m["unclosed"]:
            raise ValueError(f"${{ without its }} in {line!r}")
        if m["blank"]:
            finish()
        elif m["op"]:
            finish()
            tokens.append(Op(m["op"]))
        elif m["single"] is not None:
            quoted = True
            add(m["single"])
        elif m["double"]:
            quoted = True
            add("")
            while True:
                inner = _INSIDE_DOUBLE.match(line, pos)
                if inner is None:
                    raise ValueError(f"unterminated double quote in {line!r}")
                pos = inner.end()
                if inner["unclosed"]:
                    raise ValueError(f"${{ without its }} in {line!r}")
                if inner["end"]:
                    break
                if inner["escaped"]:
                    add(inner["escaped"])
                elif inner["plain"]:
                    add(inner["plain"])
                else:
                    add(_var(inner))
        elif m["escaped"] is not None:
            add(m["escaped"])
        elif m["trailing"]:
            add("\\")
        elif m["plain"]:
            add(m["plain"])
        else:
            add(_var(m))
    finish()
    return tokens


def expand(word: Word, variables: Mapping[str, str]) -> str | None:
    """The word's text with each Var replaced by its value; None if unquoted and empty."""
    text = "".join(p if isinstance(p, str) else variables.get(p.name, "") for p in word.parts)
    return text if text or word.quoted else None


@dataclass
class _Command:
    words: list[Word] = field(default_factory=list)
    redirections: list[tuple[str, Word | None]] = field(default_factory=list)


@dataclass
class _AndOr:
    left: _AndOr | list[_Command]
    op: str
    right: list[_Command]


def _split(tokens: list[Word | Op], ops: tuple[str, ...]) -> list[tuple[str, list[Word | Op]]]:
    """[(the operator before the piece, the piece)]; the first operator is ''."""
    pieces: list[tuple[str, list[Word | Op]]] = [("", [])]
    for tok in tokens:
        if isinstance(tok, Op) and tok in ops:
            pieces.append((str(tok), []))
        else:
            pieces[-1][1].append(tok)
    return pieces


def _command(tokens: list[Word | Op]) -> _Command:
    command = _Command()
    it = iter(tokens)
    for tok in it:
        if isinstance(tok, Word):
            command.words.append(tok)
        elif tok == "2>&1":
            command.redirections.append((tok, None))
        else:
            target = next(it, None)
            if not isinstance(target, Word):
                raise ValueError(f"syntax error: {tok} needs a file name")
            command.redirections.append((str(tok), target))
    if not command.words:
        raise ValueError("syntax error: an empty command")
    return command


def _parse(tokens: list[Word | Op]) -> list[_AndOr | list[_Command]]:
    sequence: list[_AndOr | list[_Command]] = []
    statements = _split(tokens, (";",))
    if statements[-1][1] == [] and len(statements) > 1:
        statements.pop()  # `a ;` may end a line
    for _, statement in statements:
        if not statement and len(statements) == 1:
            continue  # a blank line
        tree: _AndOr | list[_Command] | None = None
        for op, piece in _split(statement, ("&&", "||")):
            pipeline = [_command(stage) for _, stage in _split(piece, ("|",))]
            tree = pipeline if tree is None else _AndOr(tree, op, pipeline)
        assert tree is not None
        sequence.append(tree)
    return sequence


class Shell:
    """A shell's state: variables (exported to every command), the last status, exited or not."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.vars: dict[str, str] = dict(os.environ if env is None else env)
        self.status = 0
        self.exited = False

    def run(self, line: str) -> int:
        """Run one command line and return its status, which is also the new `$?`."""
        try:
            sequence = _parse(tokenize(line))
        except ValueError as exc:
            os.write(2, f"mini_shell: {exc}\n".encode())
            self.status = 2
            return 2
        for tree in sequence:
            self._evaluate(tree)
            if self.exited:
                break
        return self.status

    def run_script(self, text: str) -> int:
        """Run each line of `text` in order until the end or `exit`; return the exit status."""
        for line in text.splitlines():
            if self.exited:
                break
            self.run(line)
        return self.status

    def _evaluate(self, tree: _AndOr | list[_Command]) -> None:
        if isinstance(tree, list):
            self.status = self._pipeline(tree)
            return
        self._evaluate(tree.left)
        if self.exited:
            return
        if (self.status == 0) == (tree.op == "&&"):
            self.status = self._pipeline(tree.right)

    def _builtin(self, name: str, args: list[str]) -> int:
        if name == "cd":
            target = args[0] if args else self.vars.get("HOME", "")
            try:
                os.chdir(target)
            except OSError as exc:
                os.write(2, f"mini_shell: cd: {target}: {exc.strerror}\n".encode())
                return 1
            return 0
        if name == "exit":
            self.exited = True
            if not args:
                return self.status
            if not re.fullmatch(r"[+-]?[0-9]+", args[0]):
                os.write(2, f"mini_shell: exit: {args[0]}: numeric argument required\n".encode())
                return 2
            return int(args[0]) % 256
        for arg in args:
            if "=" in arg:
                name, value = arg.split("=", 1)
                self.vars[name] = value
        return 0

    def _descriptors(self, command: _Command, table: list[int], opened: list[int]) -> str | None:
        """Play the redirections, in order, on `table` (fds 0, 1, 2); None, or what went wrong."""
        variables = {**self.vars, "?": str(self.status)}
        modes = {
            "<": os.O_RDONLY,
            ">": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
            ">>": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
        }
        for op, target in command.redirections:
            if op == "2>&1":
                table[2] = table[1]  # whatever fd 1 is at this moment
                continue
            path = expand(target, variables) if target is not None else None
            if path is None:
                return "ambiguous redirect"
            try:
                fd = os.open(path, modes[op], 0o666)
            except OSError as exc:
                return f"{path}: {exc.strerror}"
            opened.append(fd)
            table[0 if op == "<" else 1] = fd
        return None

    def _start(self, command: _Command, argv: list[str], stdin: int, stdout: int) -> subprocess.Popen[bytes] | int:
        """Start one command of a pipeline: its Popen, or the status it ended with at once."""
        table, opened = [stdin, stdout, 2], []
        try:
            problem = self._descriptors(command, table, opened)
            if problem is not None:
                os.write(2, f"mini_shell: {problem}\n".encode())
                return 1
            if not argv:
                return 0
            try:
                # restore_signals (the default) gives the child SIGPIPE back as SIG_DFL.
                return subprocess.Popen(argv, stdin=table[0], stdout=table[1], stderr=table[2], env=self.vars)
            except (OSError, ValueError):
                os.write(2, f"mini_shell: {argv[0]}: command not found\n".encode())
                return COMMAND_NOT_FOUND
        finally:
            for fd in opened:
                os.close(fd)

    def _pipeline(self, pipeline: list[_Command]) -> int:
        variables = {**self.vars, "?": str(self.status)}
        argvs = [[a for a in (expand(w, variables) for w in c.words) if a is not None] for c in pipeline]
        if len(pipeline) == 1 and argvs[0] and argvs[0][0] in BUILTINS:
            return self._builtin(argvs[0][0], argvs[0][1:])
        started: list[subprocess.Popen[bytes] | int] = []
        stdin = 0
        for k, (command, argv) in enumerate(zip(pipeline, argvs, strict=True)):
            read_end, write_end = os.pipe() if k < len(pipeline) - 1 else (0, 1)
            started.append(self._start(command, argv, stdin, write_end))
            # The shell keeps no pipe end: the reader sees EOF when its writer is done.
            for fd in (stdin, write_end):
                if fd not in (0, 1):
                    os.close(fd)
            stdin = read_end
        codes = [p if isinstance(p, int) else p.wait() for p in started]
        return 128 - codes[-1] if codes[-1] < 0 else codes[-1]
