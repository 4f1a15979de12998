"""The README's own-agent example runs and learns."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own_agent.py"


def load():
    spec = importlib.util.spec_from_file_location("own_agent", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_memory_fixes_the_agents_bias(tmp_path):
    example = load()
    scores = example.play(tmp_path / "m.sqlite", 6)
    assert scores[0] == 0.0  # the agent's own favourite: the pit
    assert scores[-3:] == [10.0, 10.0, 10.0]  # memory steers it right, and it stays right
    # memory persists: a new JitRL on the same file starts where the last one stopped
    assert example.play(tmp_path / "m.sqlite", 1) == [10.0]
