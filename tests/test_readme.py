"""The README's code runs as printed (documentation that rots is worse than none)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_follow_an_order_example_runs(tmp_path: Path, capsys) -> None:
    text = README.read_text()
    match = re.search(r"## Follow an order\n\n```python\n(.*?)```", text, re.S)
    assert match, "README lost its 'Follow an order' example"
    script = tmp_path / "example.py"
    script.write_text(match.group(1))
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "bob trade filled taker 3 3 0" in out
    assert "alice trade partially_filled maker 3 3 2" in out


def test_readme_opens_with_the_two_commands() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    assert "agora" in blocks[0], "first command must set up and run the market"
    assert blocks[1].strip() == "bash scripts/test.sh"
    ci = (README.parent / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci, ".ci/run must run exactly the README's test command"


def test_trade_from_your_own_program_example_runs(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from deploy.launch import start_exchange

    text = README.read_text()
    match = re.search(r"## Trade from your own program\n.*?```python\n(.*?)```", text, re.S)
    assert match, "README lost its SDK example"
    script = tmp_path / "sdk_example.py"
    script.write_text(match.group(1))
    proc = start_exchange(tmp_path / "ex")
    try:
        r = proc.ready
        env = {
            **os.environ, "AGORA_GATEWAY": r["gateway"], "AGORA_FEED": r["feed"],
            "AGORA_SNAPSHOT": r["snapshot"], "PYTHONPATH": str(README.parent),
        }  # fmt: skip
        out = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        proc.stop()
    assert out.returncode == 0, out.stderr
    assert "alice filled 3 at 10010" in out.stdout
    assert "cancel all" in out.stdout and "cancelled=1" in out.stdout
    assert "local book" in out.stdout
