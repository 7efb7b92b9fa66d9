# ruff: noqa: E501 - the table holds code as it stands in the transport
"""Semantic mutants of the transport, by hand: each removes or weakens one check; each must
make a test fail. Runs each in a scratch copy of this checkout, with this checkout's Python.

    python tools/mutation/semantic.py [N ...]     # all, or the mutants numbered N
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
R = "fed/_transport/inbox.py"
G = "fed/_transport/grpc_link.py"
L = "fed/_transport/liveness.py"
S = "fed/_transport/sender.py"
MUTANTS = [
    ("admit: no header check", R, "        check_header(self._config, header, caller.names)\n", ""),
    ("admit: duplicates are stored again", R, "        if self._box.has(key):\n", "        if False:\n"),
    ("admit: a second concurrent push of one value is let in", R, "        if self._box.receiving(key):\n", "        if False:\n"),
    ("admit: a push is charged nothing", R, "self._box.reserve(key, holding_cost(header, len(frame)))", "self._box.reserve(key, 0)"),
    ("admit: a push is charged its payload only", R, "self._box.reserve(key, holding_cost(header, len(frame)))", "self._box.reserve(key, header.total_size)"),
    ("admit: no-room for later is said to be for now", R, "Refusal.BUSY if exc.now else Refusal.TOO_LARGE", "Refusal.BUSY"),
    ("push: a failed push keeps its room", R, """                return await self._store(header, payload)
            except BaseException:
                self._box.release((header.src, header.object_id))
                raise
        except Refused as refused:
            raise self._refuse(refused, caller) from None

    async def on_push_whole""", """                return await self._store(header, payload)
            except BaseException:
                raise
        except Refused as refused:
            raise self._refuse(refused, caller) from None

    async def on_push_whole"""),
    ("push_whole: a failed push keeps its room", R, """                return await self._store(header, payload)
            except BaseException:
                self._box.release((header.src, header.object_id))
                raise
        except Refused as refused:
            raise self._refuse(refused, caller) from None

    async def on_pulled""", """                return await self._store(header, payload)
            except BaseException:
                raise
        except Refused as refused:
            raise self._refuse(refused, caller) from None

    async def on_pulled"""),
    ("push_whole: no length check", R, "                if len(payload) != header.total_size:\n", "                if False:\n"),
    ("assemble: a payload longer than declared is taken", R, "        if end > total:\n", "        if False:\n"),
    ("assemble: a truncated payload is taken", R, "    if offset != total:\n", "    if False:\n"),
    ("next_frame: no patience (slowloris)", R, "return await asyncio.wait_for(stream.next(), patience)", "return await stream.next()"),
    ("store: a refused value the program waits for is not told", R, """            if key in self._box.waiting:
                self._box.deliver""", """            if False:
                self._box.deliver"""),
    ("store: every refused value keeps a slot", R, """            if key in self._box.waiting:
                self._box.deliver""", """            if True:
                self._box.deliver"""),
    ("store: decoding on the event loop", R, """                    arrived = await asyncio.get_running_loop().run_in_executor(self._decoders, self._decode,
                                                                               header, payload)""", """                    arrived = self._decode(header, payload)"""),
    ("store: every value decoded on the event loop", R, "if self._inline and header.total_size <= INLINE_DECODE_BYTES:", "if True:"),
    ("store: values with registered types decoded on the event loop", R, "self._inline = not self._policy.types.by_name and not self._policy.unsafe", "self._inline = True"),
    ("store: no per-peer limit on decoding threads", R, "            async with self._decoding[header.src]:\n", "            async with contextlib.nullcontext():\n"),
    ("decode: an error frame of several segments is read", R, "            if len(segments) != 1:\n", "            if False:\n"),
    ("decode: the refusal's detail goes back to the peer", R, 'raise Refused(Refusal.MALFORMED, f"value refused: {exc}", exc.detail) from None', 'raise Refused(Refusal.MALFORMED, f"value refused: {exc} {exc.detail}", exc.detail) from None'),
    ("refuse: the log line is not clipped", R, 'logger.warning("refused a call from %s: %s", clip(caller.address, 100), clip(str(refused), 600))', 'logger.warning("refused a call from %s: %s", clip(caller.address, 100), str(refused))'),
    ("ping: answers strangers", R, """            job, src, theirs, waits = _control(wire.decode_ping, request)
            check_source(self._config, job, src, caller.names)""", """            job, src, theirs, waits = _control(wire.decode_ping, request)"""),
    ("calls: answers strangers", R, """            job, src, upto, call = _control(wire.decode_calls_request, request)
            check_source(self._config, job, src, caller.names)""", """            job, src, upto, call = _control(wire.decode_calls_request, request)"""),
    ("bye: a stranger can say another party is gone", R, """            job, src, kind, error_type, cause = _control(wire.decode_bye, request)
            check_source(self._config, job, src, caller.names)""", """            job, src, kind, error_type, cause = _control(wire.decode_bye, request)"""),
    ("prove: no proof of identity", G, "            await context.send_initial_metadata(self._prover.metadata(caller.names))", "            pass"),
    ("grpc: the caller's names are not read from its certificate", G, "caller = Caller(context.peer(), peer_names(context.auth_context()))", "caller = Caller(context.peer(), frozenset({'alice', 'bob', 'carol'}))"),
    ("liveness: answered pings are ignored", L, "                last_answer = now\n", "                pass\n"),
    ("liveness: a run of failures never ends", L, 'if answer == "unreachable" else None', 'if answer == "unreachable" else cut_since'),
    ("liveness: a sign of life does not restart the run", L, "cut_since = max(cut_since, self._contact.get(party, cut_since))", "pass"),
    ("liveness: a late answer counts as unreachable", L, 'return "late" if exc.code == "DEADLINE_EXCEEDED" and connection.ready() else "unreachable"', 'return "unreachable"'),
    ("liveness: a seen peer gets timeout_in_ms", L, "                patience = short\n", "                patience = long\n"),
    ("liveness: no divergence check", L, "        if both and digest != str(self._calls.digest(both)):\n", "        if False:\n"),
    ("sender: no-room is a failure like any", S, "if exc.code not in policy.retryable and not no_room:", "if exc.code not in policy.retryable:"),
    ("sender: maxAttempts ignored", S, "if policy.max_attempts is not None and failed_tries >= policy.max_attempts:", "if False:"),
    ("sender: the window is not waited for", S, "            await window.reserve(len(chunk))\n", "            window.sent += len(chunk)\n"),
    ("sender: the peer is not told a push failed", S, "            await self._tell_failure(dst, header, exc)\n", ""),
]
TESTS = ["tests/integration/test_receiver.py", "tests/integration/test_hostile.py", "tests/integration/test_identity.py",
         "tests/integration/test_perimeter.py", "tests/unit"]
work = os.path.join(tempfile.mkdtemp(prefix="fed-semantic-"), "repo")
shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", ".hypothesis"))
pick = [int(a) for a in sys.argv[1:]] or range(len(MUTANTS))
for i in pick:
    label, path, old, new = MUTANTS[i]
    original = open(os.path.join(ROOT, path)).read()
    if original.count(old) != 1:
        print(i, label, "CANNOT APPLY", original.count(old), flush=True)
        continue
    text = original.replace(old, new)
    if "contextlib" in new and "import contextlib" not in text:
        text = "import contextlib\n" + text if not text.startswith('"""') else text.replace("\nimport ", "\nimport contextlib\nimport ", 1)
    open(f"{work}/{path}", "w").write(text)
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TESTS],
                       cwd=work, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": work})
    lines = r.stdout.strip().splitlines()
    last = [line for line in lines if line.startswith(("FAILED", "ERROR"))][:1] or lines[-1:]
    print(i, label, "KILLED" if r.returncode else "SURVIVED", f"{time.time() - t0:.0f}s", last[0][:160] if last else "", flush=True)
    open(f"{work}/{path}", "w").write(original)
shutil.rmtree(os.path.dirname(work))
