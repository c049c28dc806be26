"""The README's code runs as printed (documentation that rots is worse than none).

Every ```python and ```bash block of README.md is read here at test time (no copies that can
drift) and either run against a real local market, or carries a marker on the line right
before it that says why it is not run: ``<!-- not run: needs Docker -->``. A block that is
neither fails `test_every_block_is_run_or_says_why_not`.

How a block runs, decided by what it holds (so that a block edited or added later is run the
same way without a change here):

* The blocks run in a scratch directory laid out like a checkout (the repository's files linked
  in, ``.venv`` linked to the environment the tests run in), so ``.venv/bin/agora ...`` and
  relative paths such as ``var/admin.token`` mean what they mean to a user.
* Install steps (``python3 -m venv .venv``, ``.venv/bin/pip install -e '.[extra]'``) are not
  repeated: ``scripts/test.sh`` makes that very install, and
  `test_install_steps_are_what_the_tests_run_in` checks that every extra the README installs
  is part of the test extra, so the environment here has everything a reader's has.
* The first block that runs ``agora up`` is the market everything else trades on: it runs as
  written with ``--free-ports`` added (the default ports may be taken on a shared machine), its
  data in the scratch checkout's ``var``. The blocks reach it through ``AGORA_GATEWAY``,
  ``AGORA_FEED``, ``AGORA_SNAPSHOT``, ``AGORA_CLEARING``, ``AGORA_FUNDAMENTAL`` (its free ports);
  the admin token is not passed, so a block finds it in ``var/admin.token`` as a reader's does.
  Another block that runs ``agora up`` starts its own market the same way and stops it.
* A block introduced by "Save this as `NAME`" is written to that file for the others to use.
* ``agora attach`` runs until its agent logs a fill, then gets a Ctrl-C (its ``--duration`` is
  only an upper bound); a Python block that loops forever (``async for`` or ``while True``
  without ``break``) runs until it prints a line, then is stopped. Everything else runs to its
  end and must exit 0.
* Blocks that read the recordings (``var/recorder``) and blocks that need no market run after
  the market got its Ctrl-C (which is tested too: everything stops, the leaderboard prints).

Nothing here sleeps to let something happen: every wait is for a line, a file or an exit, with
`WAIT_S` as a safety net against a hang only.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import selectors
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from deploy.launch import Proc, client_env

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
WAIT_S = 300.0  # a safety net against a hang on a loaded machine, never a synchronisation

FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*(.*?)\s*-->$")
NOT_RUN = re.compile(r"^not run:\s*(\S.*)$")
INSTALL = re.compile(r"^(python3? -m venv \S+|\S*pip3? install .*)$")
UP = re.compile(r"\bagora up\b")
ATTACH = re.compile(r"\bagora attach\b")
MARKET_COMMANDS = re.compile(r"\bagora (attach|accounts|watch|open-account|agents|record)\b|"
                             r"-m (agents|clearing|exchange)\b")  # fmt: skip
MARKET_IMPORTS = re.compile(r"\b(agents\.client|clearing\.client|agents\.recorder)\b|var/")


@dataclass(frozen=True)
class Block:
    section: str  # the `## ` heading it is under
    ordinal: int  # its place among the section's run-or-not blocks
    lang: str
    code: str
    comment: str | None  # the HTML comment on the line right before it, if any
    save_as: str | None  # "Save this as `NAME`" in the text before it

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-") or "top"
        return f"{slug}-{self.ordinal}"

    @property
    def not_run(self) -> str | None:
        """The reason it is not run, when it is marked so."""
        m = NOT_RUN.match(self.comment or "")
        return m.group(1) if m else None

    # ------------------------------------------------------------------ what it needs
    def commands(self) -> list[str]:
        """A bash block's commands: continuations joined, one per `&&` link, comments kept."""
        joined = re.sub(r"\\\n\s*", " ", self.code)
        out = []
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.extend(part.strip() for part in line.split(" && "))
        return out

    def runs(self) -> list[str]:
        """The commands that are run here: all but the install steps."""
        return [c for c in self.commands() if not INSTALL.match(_bare(c))]

    @property
    def kind(self) -> str:
        if self.save_as:
            return "file"
        if self.lang == "bash":
            runs = self.runs()
            if any(UP.search(_bare(c)) for c in runs):
                return "up"
            if len(runs) == 1 and ATTACH.search(_bare(runs[0])):
                return "attach"
            return "commands"
        loops = re.search(r"\basync for\b|\bwhile True\b", self.code)
        return "stream" if loops and "break" not in self.code else "script"

    @property
    def needs_market(self) -> bool:
        if self.kind in ("up", "file"):
            return False
        if self.lang == "bash":
            return any(MARKET_COMMANDS.search(_bare(c)) for c in self.runs())
        return bool(MARKET_IMPORTS.search(self.code))

    @property
    def after_stop(self) -> bool:
        """Runs once the market has stopped: it reads the recordings, or needs no market."""
        return "var/recorder" in self.code or not self.needs_market


def _bare(command: str) -> str:
    """A command without its trailing comment."""
    return re.sub(r"\s+#.*$", "", command)


def read_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    section, counts, prose = "", {}, []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if fence.group(1) in ("python", "bash"):
                before = next((x for x in reversed(lines[:i]) if x.strip()), "")
                marker = MARKER.match(before.strip())
                saved = re.search(r"Save this as `([^`]+)`", " ".join(prose))
                n = counts[section] = counts.get(section, 0) + 1
                code = "\n".join(lines[i + 1 : end]) + "\n"
                blocks.append(Block(section, n, fence.group(1), code,
                                    marker.group(1) if marker else None,
                                    saved.group(1) if saved else None))  # fmt: skip
            prose = []
            i = end + 1
            continue
        if line.startswith("## "):
            section, prose = line[3:].strip(), []
        else:
            prose.append(line)
        i += 1
    return blocks


BLOCKS = read_blocks(README.read_text())
RUN = [b for b in BLOCKS if b.comment is None]


def _id(block: Block) -> str:
    return block.id


# ---------------------------------------------------------------------------------- the checkout
def _as_in_a_terminal() -> None:  # pragma: no cover (runs in the child)
    """The child's Ctrl-C acts as in a terminal, even if this test run ignores SIGINT (a
    background job of a non-interactive shell does)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory that looks like the reader's checkout: the repository's files, `.venv`."""
    venv_bin = Path(sys.executable).parent
    if not (venv_bin / "agora").exists():
        pytest.fail(f"the tests must run in the project's virtualenv ({venv_bin} has no agora)")
    home = tmp_path_factory.mktemp("checkout")
    for entry in ROOT.iterdir():
        if entry.name not in (".venv", "var", ".git"):
            (home / entry.name).symlink_to(entry)
    (home / ".venv").symlink_to(venv_bin.parent)
    for block in BLOCKS:
        if block.kind == "file" and block.comment is None:
            (home / block.save_as).write_text(block.code)  # type: ignore[operator]
    return home


def _lines(stream: Any, deadline: float) -> Iterator[str]:
    """Lines of a child's text stream as they come, until it ends or the deadline passes."""
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        while (left := deadline - time.monotonic()) > 0 and sel.select(left):
            line = stream.readline()
            if not line:
                return
            yield line.rstrip("\n")
    finally:
        sel.close()


class Up:
    """A block's `agora up`, run as written plus `--free-ports` and `--json` (machine lines on
    stdout beside the person's view on the terminal), in `home`."""

    def __init__(self, command: str, home: Path) -> None:
        self.home = home
        self.err_path = home / f"up-{os.getpid()}-{id(self)}.err"
        self._err = open(self.err_path, "w")  # noqa: SIM115 (closed in ctrl_c)
        self.proc = subprocess.Popen(
            ["bash", "-c", f"{_bare(command)} --free-ports --json"], cwd=home, text=True,
            stdout=subprocess.PIPE, stderr=self._err, start_new_session=True,
            preexec_fn=_as_in_a_terminal,
        )  # fmt: skip
        self.summary: dict[str, Any] | None = None
        assert self.proc.stdout is not None
        for line in _lines(self.proc.stdout, time.monotonic() + WAIT_S):
            event = json.loads(line) if line.startswith("{") else {}
            if event.get("event") == "ready":
                self.ready = event
                break
        else:
            self.kill()
            raise AssertionError(f"agora up did not start:\n{self.log()[-3000:]}")
        # what a reader's shell would hold if the market had the default ports; no admin token
        self.env = client_env(self.ready["endpoints"])
        self.env.pop("AGORA_ADMIN_TOKEN", None)

    def log(self) -> str:
        return self.err_path.read_text(errors="replace")

    def ctrl_c(self) -> dict[str, Any]:
        """Ctrl-C as in a terminal (to its process group); returns its final summary."""
        if self.summary is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                out, _ = self.proc.communicate(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"agora up ignored Ctrl-C:\n{self.log()[-3000:]}") from None
            self._err.close()
            assert self.proc.returncode == 0, self.log()[-3000:]
            events = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
            summary = next((e for e in events if e.get("event") == "summary"), None)
            assert summary, f"no summary after Ctrl-C:\n{self.log()[-3000:]}"
            self.summary = summary
        return self.summary

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._err.close()


def _first_up_block() -> Block:
    block = next((b for b in RUN if b.kind == "up"), None)
    assert block, "no README block runs `agora up` to start a market"
    return block


@pytest.fixture(scope="module")
def market(checkout: Path) -> Iterator[Up]:
    """The market of the README's first `agora up` block, shared by the blocks that trade."""
    (command,) = [c for c in _first_up_block().runs() if UP.search(_bare(c))]
    up = Up(command, checkout)
    try:
        yield up
    finally:
        if up.summary is None and up.proc.poll() is None:
            try:
                up.ctrl_c()
            except AssertionError:
                up.kill()


# ---------------------------------------------------------------------------------- running blocks
def _wait_for_a_trade(env: dict[str, str]) -> None:
    """Event-driven: the market is trading once a trade shows on its feed."""
    code = ("import asyncio\nfrom agents.client import MarketDataClient\n"
            "async def main():\n    async with MarketDataClient() as md:\n"
            "        async for t in md.watch_trades('AGR'):\n"
            "            print(t.trade_id)\n            return\n"
            "asyncio.run(main())\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=WAIT_S)  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip().isdigit(), out.stderr[-3000:]


def _run_to_end(args: list[str], home: Path, env: dict[str, str]) -> str:
    out = subprocess.run(args, cwd=home, env=env, capture_output=True, text=True, timeout=WAIT_S,
                         preexec_fn=_as_in_a_terminal)  # fmt: skip
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def _run_commands(block: Block, home: Path, env: dict[str, str]) -> str:
    script = "set -eo pipefail\n" + "\n".join(block.runs()) + "\n"
    return _run_to_end(["bash", "-c", script], home, env)


def _run_attach(block: Block, home: Path, env: dict[str, str]) -> str:
    """`agora attach` until its agent has a fill, then Ctrl-C: it settles and prints its PnL."""
    (command,) = block.runs()
    proc = Proc(["bash", "-c", command], env, cwd=home, start_new_session=True,
                preexec_fn=_as_in_a_terminal)  # fmt: skip
    try:
        proc.wait_log(lambda line: "filled" in line, timeout=WAIT_S)
    except LookupError:
        raise AssertionError(f"the agent never filled:\n{proc.stderr_text()[-3000:]}") from None
    finally:
        if proc.returncode is None:
            os.killpg(proc.popen.pid, signal.SIGINT)  # Ctrl-C
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=WAIT_S)
        err = proc.stop(signal.SIGKILL)  # only if it ignored the Ctrl-C
    assert proc.returncode == 0, err[-3000:]
    result = next(x for x in proc.output.splitlines() if x.startswith("AGORA_RESULT "))
    summary = json.loads(result[len("AGORA_RESULT ") :])
    assert summary["fills"] > 0 and summary["errors"] == 0 and summary["mismatches"] == []
    return proc.output


def _run_stream(path: Path, home: Path, env: dict[str, str]) -> str:
    """A script that runs until stopped: its first line of output, then stop it."""
    proc = subprocess.Popen([sys.executable, str(path)], cwd=home, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        line = next(_lines(proc.stdout, time.monotonic() + WAIT_S), "")
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert line, f"it printed nothing:\n{err[-3000:]}"
    return line + "\n"


def run_block(block: Block, home: Path, env: dict[str, str]) -> str:
    """Run one block in `home` with `env`; returns what it printed (stdout)."""
    if block.kind == "up":
        for command in block.runs():
            if not UP.search(_bare(command)):
                _run_to_end(["bash", "-c", command], home, env)
                continue
            up = Up(command, home)  # a second market, on ports of its own
            try:
                assert up.ctrl_c()["accounts"], up.log()[-3000:]
            finally:
                up.kill()
        return ""
    if block.kind == "attach":
        return _run_attach(block, home, env)
    if block.kind == "commands":
        return _run_commands(block, home, env)
    missing = [m for m in _imports(block.code) if not _installed(m)]
    assert not missing, (
        f"the block imports {missing}, not installed here: the README must "
        "name the extra that installs them, and the test extra include it"
    )
    path = home / f"readme_{block.id.replace('-', '_')}.py"
    path.write_text(block.code)
    if block.kind == "stream":
        return _run_stream(path, home, env)
    return _run_to_end([sys.executable, str(path)], home, env)


def _imports(code: str) -> list[str]:
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return sorted(names)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# What some blocks must print beyond running cleanly, by section.
def _check_follow_an_order(out: str) -> None:
    assert "bob trade filled taker 3 3 0" in out
    assert "alice trade partially_filled maker 3 3 2" in out


def _check_own_program(out: str) -> None:
    assert re.search(r"^account \S+$", out, re.M), out
    assert re.search(r"^buy new", out, re.M), out  # accepted: the account exists and may buy
    # it either filled against the crowd or gave up after a bounded wait, then cleaned up
    assert re.search(r"^filled [12] at \d+\.\d+$|^not filled within", out, re.M), out
    assert re.search(r"^cancelled \d+$", out, re.M), out
    assert re.search(r"^cash [\d.]+ positions \{'AGR': \d+\}$", out, re.M), out


def _check_feed(out: str) -> None:
    trade_id, price, qty, side = out.split()
    assert int(trade_id) > 0 and float(price) > 0 and int(qty) > 0
    assert side in ("buy", "sell", "none")


def _check_simulate(out: str) -> None:
    assert "stylized facts" in out and "kurtosis" in out


CHECKS: dict[str, Callable[[str], None]] = {
    "Follow an order": _check_follow_an_order,
    "Trade from your own program": _check_own_program,
    "Subscribe to the price feed": _check_feed,
    "Simulated time": _check_simulate,
}


# ---------------------------------------------------------------------------------- the tests
def test_every_block_is_run_or_says_why_not() -> None:
    assert len(BLOCKS) >= 8, "README lost its examples"
    for block in BLOCKS:
        if block.comment is not None:
            assert block.not_run, (
                f"{block.id}: the comment before it must read "
                f"'<!-- not run: REASON -->', not {block.comment!r}"
            )
    for block in RUN:
        if block.lang == "bash":
            assert block.runs() or block.kind == "file", f"{block.id}: nothing to run"
    assert {b.section for b in RUN} >= set(CHECKS), "a checked section lost its runnable block"
    for block in RUN:
        if block.kind == "file":
            users = [b for b in RUN if b is not block and block.save_as in b.code]
            assert users, f"{block.id}: saved as {block.save_as}, but no block uses it"
            compile(block.code, block.save_as, "exec")  # type: ignore[arg-type]


def test_install_steps_are_what_the_tests_run_in() -> None:
    """The README's installs are not repeated here: the test command installs all they do (the
    test extra, or an optional extra that scripts/test.sh installs beside it)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "python3 -m venv .venv" in script and "pip install" in script
    # the extras the test command installs: every `extras="..."` set it may choose
    tested = {e for group in re.findall(r'extras="([\w,]+)"', script) for e in group.split(",")}
    assert "test" in tested and '-e ".[$extras]"' in script
    test = {re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in extras["test"]}
    # every pip install in a block, a command or a comment ("# needs ...: pip install ...")
    installs = [m for b in BLOCKS for m in re.findall(r"\bpip3? install [^#&\n]*", b.code)]
    assert any("venv" in c for b in BLOCKS for c in b.commands()) and installs
    for command in installs:
        for word in shlex.split(command):
            m = re.fullmatch(r"\.\[([\w,-]+)\]", word)
            for extra in m.group(1).split(",") if m else ():
                assert extra in extras, f"{command}: pyproject.toml has no extra {extra!r}"
                if extra in tested:
                    continue
                wanted = {re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in extras[extra]}
                assert wanted <= test, f"the test extra lacks {wanted - test} ({command})"


@pytest.mark.parametrize("block", [b for b in RUN if b.kind == "up"], ids=_id)
def test_block_starts_a_market(block: Block, market: Up) -> None:
    if block is not _first_up_block():
        run_block(block, market.home, dict(os.environ))
        return
    assert market.ready["endpoints"]
    assert (market.home / "var" / "admin.token").exists()  # where the other blocks find it
    _wait_for_a_trade(market.env)


@pytest.mark.parametrize("block", [b for b in RUN if b.kind not in ("up", "file")
                                   and not b.after_stop], ids=_id)  # fmt: skip
def test_block_runs_against_the_running_market(block: Block, market: Up) -> None:
    out = run_block(block, market.home, market.env)
    if block.section in CHECKS:
        CHECKS[block.section](out)


def test_ctrl_c_stops_the_market_and_prints_the_leaderboard(market: Up) -> None:
    _wait_for_a_trade(market.env)
    summary = market.ctrl_c()
    assert summary["trades"] > 0
    assert summary["accounts"] and all(a["settled_through"] >= 0 for a in summary["accounts"])
    assert "PnL" in market.log() and summary["accounts"][0]["account"] in market.log()
    assert all(r["mismatches"] == 0 for r in summary["agents"].values())


@pytest.fixture(scope="module")
def stopped(market: Up) -> Up:
    market.ctrl_c()
    return market


@pytest.mark.parametrize("block", [b for b in RUN if b.kind not in ("up", "file")
                                   and b.after_stop], ids=_id)  # fmt: skip
def test_block_runs_after_the_market_stopped(block: Block, checkout: Path,
                                             request: pytest.FixtureRequest) -> None:  # fmt: skip
    env = dict(os.environ)
    if "var/recorder" in block.code:
        env = request.getfixturevalue("stopped").env  # the recordings of the market above
    out = run_block(block, checkout, env)
    if block.section in CHECKS:
        CHECKS[block.section](out)


def test_readme_opens_with_the_two_commands() -> None:
    bash = [b for b in BLOCKS if b.lang == "bash"]
    assert UP.search(bash[0].code), "first command must set up and run the market"
    assert bash[1].code.strip() == "bash scripts/test.sh"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci, ".ci/run must run exactly the README's test command"


def test_facts_without_matplotlib_says_how_to_install_it(tmp_path: Path, monkeypatch) -> None:
    """The hint survives rich's markup (which took "[plots]" for a tag) and is the README's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from agents.analysis import plots
    from deploy.cli import app

    ns = 1_000_000_000
    pq.write_table(pa.table({"ts": [i * ns for i in range(60)], "symbol": ["AGR"] * 60,
                             "price": [10_000 + (i * 7919) % 13 for i in range(60)],
                             "qty": [1] * 60}), tmp_path / "trades.parquet")  # fmt: skip
    monkeypatch.setattr(plots, "HAVE_MATPLOTLIB", False)
    result = CliRunner().invoke(app, ["facts", str(tmp_path), "--real", "none"],
                                env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"({plots.INSTALL_HINT})" in result.output
    assert plots.INSTALL_HINT == "pip install -e '.[plots]'"
    assert any("pip install -q -e '.[plots]'" in c for b in RUN for c in b.commands())
