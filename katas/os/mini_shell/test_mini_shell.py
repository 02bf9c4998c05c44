"""Tests for the mini shell: words like bash splits them, scripts with bash's output and status."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .mini_shell import Op, Shell, Word, expand, tokenize

PATIENCE = 5.0  # seconds a script may run (each one here takes milliseconds)
CHILD_ESCAPED = 86
STDIN = b"delta\nalpha\ncharlie\nbravo\n"
X_VALUE = "v1"

# --- running a script in your shell and in bash ----------------------------------------------


@dataclass
class Outcome:
    stdout: bytes
    status: int
    files: dict[str, bytes]  # every file under the run's folder, by relative path


def _fresh_dir(tmp: Path) -> tuple[Path, Path, dict[str, str]]:
    """A run folder: box/work (the cwd, with in.txt and sub/), box/home, and the env to use."""
    run = Path(tempfile.mkdtemp(dir=tmp)).resolve()
    box = run / "box"  # everything the script may touch; the harness's own files sit beside it
    (box / "work" / "sub").mkdir(parents=True)
    (box / "home").mkdir()
    (box / "work" / "in.txt").write_bytes(b"one\ntwo\nthree\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(box / "home"), "LC_ALL": "C", "X": X_VALUE}
    return run, box / "work", env


def _collect(run: Path, stdout: bytes, status: int) -> Outcome:
    box = run / "box"
    files = {str(p.relative_to(box)): p.read_bytes() for p in sorted(box.rglob("*")) if p.is_file()}
    files.pop("work/in.txt", None)
    # The two runs live in different folders: show paths the same way.
    return Outcome(stdout.replace(str(box).encode(), b"<DIR>"), status, files)


def run_bash(script: str, tmp: Path) -> Outcome:
    run, work, env = _fresh_dir(tmp)
    (run / "script.sh").write_text(script + "\n")
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", str(run / "script.sh")],
        input=STDIN, capture_output=True, cwd=work, env=env, timeout=30, check=False,
    )
    return _collect(run, proc.stdout, proc.returncode)


def run_ours(script: str, tmp: Path) -> Outcome:
    """Shell(env).run_script(script) in a forked process, with fds 0, 1, 2 on files."""
    run, work, env = _fresh_dir(tmp)
    stdin, stdout, stderr = run / "stdin", run / "stdout", run / "stderr"
    crash, escaped = run / "crash", run / "escaped"
    stdin.write_bytes(STDIN)
    sys.stdout.flush()
    sys.stderr.flush()
    harness = os.fork()
    if harness == 0:  # the shell's own process: it may chdir, exit, whatever it likes
        code = 70
        me = os.getpid()
        try:
            os.chdir(work)
            for fd, path, flags in ((0, stdin, os.O_RDONLY), (1, stdout, os.O_WRONLY | os.O_CREAT),
                                    (2, stderr, os.O_WRONLY | os.O_CREAT)):
                opened = os.open(path, flags, 0o644)
                os.dup2(opened, fd)
                os.close(opened)
            sys.stdout = open(1, "w", closefd=False)  # print() reaches fd 1, not pytest's capture  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            code = Shell(env).run_script(script)
        except BaseException:
            crash.write_text(traceback.format_exc())
        finally:
            if os.getpid() != me:  # one of the shell's children came back out of run_script
                escaped.touch()
                os._exit(CHILD_ESCAPED)
            sys.stdout.flush()
            os._exit(code)
    status = _wait(harness, script)
    if crash.exists():
        raise AssertionError(f"your shell raised while running {script!r}:\n{crash.read_text()}")
    if escaped.exists():
        raise AssertionError(
            f"running {script!r}, a child your shell forked returned from run_script instead of "
            "exec'ing: after fork the child must end with exec or os._exit (try/finally)."
        )
    return _collect(run, stdout.read_bytes(), status)


def _wait(pid: int, script: str) -> int:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(wait_status) & 0xFF
        time.sleep(0.01)
    with contextlib.suppress(psutil.Error):
        procs = psutil.Process(pid).children(recursive=True)
        stuck = ", ".join(f"{p.name()} (pid {p.pid})" for p in procs)
        for proc in procs:
            proc.kill()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(
        f"your shell did not finish {script!r} within {PATIENCE:g} s (children still running: "
        f"{stuck or 'none'}). A command waiting for EOF on a pipe whose write end the shell "
        "still holds, or a shell waiting for a child before closing its pipe ends?"
    )


def _compare(script: str, tmp: Path, why: str = "") -> None:
    ours, bash = run_ours(script, tmp), run_bash(script, tmp)
    assert (ours.stdout, ours.status, ours.files) == (bash.stdout, bash.status, bash.files), (
        f"script {script!r}:\n"
        f"  bash:  stdout={bash.stdout!r} exit status={bash.status} files={bash.files}\n"
        f"  yours: stdout={ours.stdout!r} exit status={ours.status} files={ours.files}"
        + (f"\n{why}" if why else "")
    )


def _bash_words(line: str, env: dict[str, str] | None = None) -> list[str]:
    """How bash splits `line` into words: the arguments printf receives."""
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", "printf '%s\\0' " + line],
        capture_output=True, env={"PATH": os.environ["PATH"], **(env or {})}, timeout=30,
        check=True,
    )
    return proc.stdout.decode().split("\0")[:-1]


def _our_words(line: str, variables: dict[str, str] | None = None) -> list[str]:
    tokens = tokenize(line)
    ops = [t for t in tokens if isinstance(t, Op)]
    assert not ops, f"tokenize({line!r}) found operators {ops}, but every one is quoted or escaped"
    values = {"?": "0", **(variables or {})}
    return [w for w in (expand(t, values) for t in tokens if isinstance(t, Word)) if w is not None]


# --- words -------------------------------------------------------------------------------------

SAFE = "abcxyzABC0123456789._+=:,@%/"  # characters that mean nothing special to bash
SPECIAL = " |&;<>*?$'\"\\#(){}~"

plain = st.text(alphabet=SAFE, min_size=1, max_size=5)
single = st.text(alphabet=SAFE + SPECIAL.replace("'", ""), max_size=6).map(lambda s: f"'{s}'")
in_double = st.one_of(
    st.text(alphabet=SAFE + " |&;<>*?'#(){}~", min_size=1, max_size=5),
    st.sampled_from(['\\"', "\\\\", "\\$", "\\a", "$X", "${X}", "$?", "$ "]),
)
double = st.lists(in_double, max_size=3).map(lambda parts: '"' + "".join(parts) + '"')
escaped = st.sampled_from(list(SPECIAL)).map(lambda c: "\\" + c)
variable = st.sampled_from(["$X", "${X}", "$?"])
word = st.lists(st.one_of(plain, single, double, escaped, variable), min_size=1, max_size=3).map("".join)
words = st.lists(word, min_size=1, max_size=4)


@settings(max_examples=40, deadline=None, database=None)
@given(words=words, gaps=st.lists(st.sampled_from([" ", "  ", "\t"]), min_size=4, max_size=4))
def test_words_are_split_like_bash_splits_them(words: list[str], gaps: list[str]) -> None:
    """Quotes, escapes and $-expansions: the words must be the ones bash hands to a command."""
    line = words[0] + "".join(gaps[i % len(gaps)] + w for i, w in enumerate(words[1:]))
    expected = _bash_words(line, {"X": X_VALUE})
    got = _our_words(line, {"X": X_VALUE})
    assert got == expected, (
        f"line {line!r} (with X={X_VALUE}): bash sees the words {expected}, yours {got}. "
        "Quotes never end a word and may sit in the middle of one (a'b c'd is ONE word); a "
        "tokenizer must not split inside quotes; inside \"...\" a backslash escapes only "
        "$ ` \" \\; inside '...' nothing is special."
    )


def test_a_quoted_operator_or_space_is_part_of_a_word() -> None:
    line = "echo 'a | b' \"c && d\" e\\;f 'x y'z"
    tokens = tokenize(line)
    assert all(isinstance(t, Word) for t in tokens), (
        f"tokenize({line!r}) = {tokens}: an operator inside quotes or after a backslash is "
        "text, not an operator"
    )
    assert _our_words(line) == ["echo", "a | b", "c && d", "e;f", "x yz"], (
        f"the tokenizer splits inside quotes: got {_our_words(line)}"
    )


def test_operators_are_tokens_even_without_spaces() -> None:
    tokens = tokenize("a|b&&c||d;e>f>>g<h 2>&1")
    ops = [str(t) for t in tokens if isinstance(t, Op)]
    texts = [expand(t, {}) for t in tokens if isinstance(t, Word)]
    assert ops == ["|", "&&", "||", ";", ">", ">>", "<", "2>&1"], f"operators found: {ops}"
    assert texts == list("abcdefgh"), f"words found: {texts}"


@pytest.mark.parametrize("line", ["echo 'open", 'echo "open', "echo \"it's"])
def test_an_unterminated_quote_is_a_value_error(line: str) -> None:
    with pytest.raises(ValueError):
        tokenize(line)


def test_an_unquoted_empty_expansion_disappears_but_quoted_empty_stays() -> None:
    assert _our_words('echo $UNSET "$UNSET" \'\' ""') == _bash_words('echo $UNSET "$UNSET" \'\' ""')


# --- scripts, against bash -----------------------------------------------------------------------

SCRIPTS = {
    "a pipe": ("echo hello pipes | tr a-z A-Z", ""),
    "stdin reaches the first command": ("sort | head -2", ""),
    "$? after failure": ("false; echo status $?", "$? is the status of the previous pipeline."),
    "$? is expanded when the command runs": (
        "sh -c 'exit 7'; echo $?; echo $?",
        "$? must be expanded when each command runs, not when the line is read: the first "
        "echo sees 7, the second sees the first echo's 0.",
    ),
    "&& and ||": (
        "false && echo no || echo yes; true || echo no && echo yes",
        "`a && b || c` runs left to right with equal precedence: a skipped command leaves $? "
        "as it was, and the next operator looks at that.",
    ),
    "a failed && skips only its own right side": (
        "false && echo one && echo two || echo three",
        "after `false`, both `&& echo` are skipped ($? stays 1), then `|| echo three` runs.",
    ),
    "export reaches children": (
        "export GREETING=hi; sh -c 'echo $GREETING'",
        "export puts the variable into the environment of every later command (execvpe).",
    ),
    "$X and ${X}": ('echo $X ${X}y "$X" \'$X\' \\$X', ""),
    "> then >> then <": ("echo one > out.txt; echo two >> out.txt; cat < out.txt", ""),
    "2>&1 into a pipe": ("cat missing.txt 2>&1 | tr a-z A-Z", "2>&1 makes fd 2 a copy of fd 1."),
    "> f 2>&1": (
        "cat missing.txt > out.txt 2>&1; echo status $?",
        "redirections apply left to right: `> f 2>&1` points fd 1 at f, then fd 2 at fd 1 (f).",
    ),
    "2>&1 > f": (
        "cat missing.txt 2>&1 > out.txt; echo status $?",
        "redirections apply left to right: `2>&1 > f` copies fd 1 (still the terminal) to fd 2 "
        "first, and only then points fd 1 at f: the error does NOT go to f.",
    ),
    "cd changes the shell's own directory": (
        "cd sub && pwd && echo here > here.txt && cd .. && pwd",
        "cd must be a builtin: a child's chdir dies with the child.",
    ),
    "cd to nowhere fails": ("cd missing-dir || echo failed $?; pwd", "cd to a missing dir: status 1."),
    "cd with no argument goes home": ("cd; pwd", "cd with no argument goes to $HOME."),
    "exit stops the script": ("echo before; exit 3; echo after", "exit N ends the shell with N."),
    "exit with no argument": ("false\nexit", "exit with no argument exits with the last status."),
    "command not found": ("no-such-command-kata; echo $?", "a command that cannot run: 127."),
    "yes | head": ("yes | head -2; echo $?", "the status of a pipeline is its last command's."),
    "several lines": ("export N=3\necho $N > n.txt\ncat n.txt n.txt | wc -l", ""),
}


@pytest.mark.parametrize("case", list(SCRIPTS))
def test_script_behaves_like_bash(case: str, tmp_path: Path) -> None:
    script, why = SCRIPTS[case]
    _compare(script, tmp_path, why)


# --- generated scripts, against bash -------------------------------------------------------------

arguments = st.lists(word, min_size=1, max_size=3).map(" ".join)
producers = st.one_of(
    arguments.map(lambda a: f"echo {a}"),
    arguments.map(lambda a: f"printf '%s\\n' {a}"),
    st.sampled_from([
        "true", "false", "sh -c 'exit 3'", "cat in.txt", "cat missing.txt", "echo $?",
        "sh -c 'echo oops >&2; echo out'", "cat < in.txt", "sort",
    ]),
)
filters = st.sampled_from(["tr a-z A-Z", "sort -r", "wc -l", "head -1", "cat", "grep a", "grep -c o"])
redirections = st.sampled_from(["", "", "", " > out.txt", " >> out.txt", " 2>&1", " > out.txt 2>&1",
                                " 2>&1 > err.txt", " >> sub/log.txt"])


@st.composite
def pipelines(draw: st.DrawFn) -> str:
    stages = [draw(producers), *draw(st.lists(filters, max_size=2))]
    return " | ".join(stages) + draw(redirections)


statements = st.one_of(
    pipelines(), pipelines(), pipelines(),
    plain.map(lambda v: f"export X={v}"),
    st.sampled_from(["cd sub", "cd ..", "cd missing", "cd", "pwd", "echo $X", "exit 4", "exit"]),
)
lines = st.tuples(statements, st.lists(st.tuples(st.sampled_from([" && ", " || ", "; "]), statements),
                                       max_size=2)).map(lambda t: t[0] + "".join(a + b for a, b in t[1]))


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(lines, min_size=1, max_size=3).map("\n".join))
def test_generated_scripts_behave_like_bash(script: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Random scripts from pipes, redirections, && || ;, builtins and $-expansions."""
    _compare(script, tmp_path_factory.mktemp("gen"))
