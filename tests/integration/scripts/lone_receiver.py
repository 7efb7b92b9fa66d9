"""A party's receiver alone in its own process (no Ray), for hostile peers to attack.

    lone_receiver.py CONFIG_JSON LOG_FILE

CONFIG_JSON holds build_config's keyword arguments for party bob. The receiver logs to LOG_FILE
and prints ``READY``; then it reads commands on stdin, one per line, and answers on stdout:
``get SRC OBJECT_ID FINGERPRINT`` prints ``GOT <repr>`` or ``ERROR <type>: <message>``;
``stats`` prints ``STATS <json>``. It exits when stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from fed._config import build_config
from fed._transport.receiver import Receiver


async def main() -> None:
    kwargs, log_file = json.loads(sys.argv[1]), sys.argv[2]
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger("fed").addHandler(handler)
    logging.getLogger("fed").setLevel(logging.INFO)
    receiver = Receiver(build_config(**kwargs))
    await receiver.start()
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            words = line.split()
            if words[0] == "get":
                try:
                    value = await asyncio.wait_for(receiver.get(*words[1:4]), 30)
                    print(f"GOT {value!r}"[:500].replace("\n", " "), flush=True)
                except Exception as exc:  # noqa: BLE001 - reported to the test
                    print(f"ERROR {type(exc).__name__}: {exc}".replace("\n", "\\n")[:2000], flush=True)
            elif words[0] == "stats":
                print(f"STATS {json.dumps(receiver.stats())}", flush=True)
    finally:
        await receiver.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
