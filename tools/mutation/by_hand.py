"""Apply mutmut's mutants one at a time to a scratch copy of this checkout and run the given tests:
for survivors of a long mutmut run (each retried against the unit tests written for it, in
seconds) and for code mutmut cannot switch (what runs at import time).

    cd MUTATION_COPY && python REPO/tools/mutation/by_hand.py PATH TESTS... -- MUTANT_NAMES...
"""
import os
import shutil
import subprocess
import sys
import tempfile

from mutmut.mutation.diff_apply import get_diff_for_mutant

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
args = sys.argv[1:]
path = args[0]
sep = args.index("--")
tests, names = args[1:sep], args[sep + 1:]
work = os.path.join(tempfile.mkdtemp(prefix="fed-by-hand-"), "repo")
shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", ".hypothesis"))
original = open(os.path.join(ROOT, path)).read()


def ind(text: str) -> str:
    return "\n".join(("    " + line) if line else line for line in text.split("\n"))


for name in names:
    d = get_diff_for_mutant(name, path=path)
    old = [line[1:] for line in d.splitlines()[3:] if line[:1] in " -"]
    new = [line[1:] for line in d.splitlines()[3:] if line[:1] in " +"]
    old_t, new_t = "\n".join(old[1:]), "\n".join(new[1:])  # skip the def line (mutmut renames nothing there)
    if original.count(old_t) != 1:  # a method: mutmut shows it dedented
        old_t, new_t = ind(old_t), ind(new_t)
    if original.count(old_t) != 1:  # the function changed since: replace only the changed lines
        body = d.splitlines()[3:]
        minus = [line[1:] for line in body if line[:1] == "-"]
        plus = [line[1:] for line in body if line[:1] == "+"]
        old_t, new_t = "\n".join(minus), "\n".join(plus)
        if original.count(old_t) != 1:
            old_t, new_t = ind(old_t), ind(new_t)
    if original.count(old_t) != 1:
        print(name, "CANNOT APPLY", original.count(old_t))
        continue
    open(f"{work}/{path}", "w").write(original.replace(old_t, new_t))
    r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                       cwd=work, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": work})
    tail = r.stdout.strip().splitlines()
    print(name, "KILLED" if r.returncode else "SURVIVED", tail[-1][:100] if tail else r.stderr[-200:], flush=True)
open(f"{work}/{path}", "w").write(original)
shutil.rmtree(os.path.dirname(work))
