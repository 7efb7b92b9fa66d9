"""The tutorial's FedAvg loop, as printed in docs/tutorial.md, runs and converges."""

from __future__ import annotations

import re

import numpy as np
from harness import ROOT, run_fed


def test_the_tutorials_fedavg_loop_converges_in_one_process(tmp_path):
    text = (ROOT / "docs" / "tutorial.md").read_text()
    script = re.search(r"```python\n(import sys\n.*?)```", text, re.S).group(1)
    (tmp_path / "my_fedavg.py").write_text(script)

    code, out = run_fed("run", "--single", "--parties", "server,alice,bob", str(tmp_path / "my_fedavg.py"))

    assert code == 0, out
    rounds = re.findall(r"round (\d): w = \[([^\]]*)\]", out)
    assert [r for r, _ in rounds] == ["0", "1", "2", "3", "4"], out
    last = np.array([float(v) for v in rounds[-1][1].split()])
    assert np.allclose(last, [1.0, -2.0, 0.5, 0.0, 3.0], atol=0.05), last
