"""A fixed run of the decision service as nginx asks it, to count instructions with callgrind.

    valgrind --tool=callgrind --collect-atstart=no \\
        --toggle-collect='CPyPy_edge_server____Connection___data_received' \\
        python -m bench.edgecount WARM COUNT [ANSWERS]

The bench's auth subrequests (wrk-clients.lua's 100k clients, bench-policy.yaml; the bytes
nginx sends with deploy/nginx/scrapeshield.conf, bench/hostcost.py's ``_subrequest``) fed to
the edge server's protocol in-process, with the page subrequest for each 403 as error_page
asks it: the server's parsing, the service, the engine with its listeners and the reply, with
no sockets, on the event loop serve-decisions runs (uvloop when installed). The event writer
is not started (its thread is not counted; the events wait in its queue, far below its
bound). A manual clock advanced 0.5 ms per request makes every run the same. With the
compiled build the toggle counts every call into the protocol, warm-up included: divide the
total by WARM + COUNT. ``callgrind_annotate --inclusive=yes`` then shows the parts
(``CPyDef_engine___Engine___decide``, ``CPyDef_context___ContextBuilder___build``, the
challenge's ``page_data``). It prints the answers' statuses, and the writes and bytes the
service sent per request. With ANSWERS, every answer written (warm-up included) goes to that
file, one per line, challenge ids and tokens masked (they are random): ``cmp`` two such files
to check that a change to the server or the service answers exactly as before, byte for byte.
"""

from __future__ import annotations

import gc
import re
import sys
import tempfile
from typing import Any

from bench.hostcost import ACTION, POLICY, LoopbackTransport, _subrequest, client
from scrapeshield.clock import ManualClock
from scrapeshield.hosts.auth_request import MAX_VERIFY_BODY, DecisionService
from scrapeshield.hosts.edge_server import EdgeServer, _Connection
from scrapeshield.runtime import Shield
from scrapeshield.serve import _fast_loop
from scrapeshield.settings import Settings


class Transport(LoopbackTransport):
    """Keeps what the server writes (``write`` is a list's append: no harness code is counted
    inside the protocol's calls); ``take`` empties it between requests."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.write = self.sent.append

    def take(self) -> list[bytes]:
        sent = self.sent[:]
        self.sent.clear()
        return sent


# The random parts of a challenge's data: its id (hex) and token (base64url).
_RANDOM = re.compile(rb'("challenge": "|"token": ")[^"]*"')


def _masked(answer: bytes) -> bytes:
    return _RANDOM.sub(rb'\1*"', answer)


def _action(answer: bytes) -> str:
    start = answer.find(b"\r\nx-scrapeshield-action: ")
    return answer[start + 25:answer.find(b"\r\n", start + 2)].decode() if start >= 0 else ""


def main(warm: int, count: int, answers: str = "") -> dict[str, Any]:
    import asyncio

    async def run() -> dict[str, Any]:
        clock = ManualClock()
        with tempfile.TemporaryDirectory(prefix="edgecount-") as tmp:
            shield = Shield(Settings.resolve(data_dir=tmp, policy_path=str(POLICY)), clock)
            conn = _Connection(EdgeServer(DecisionService(shield).answer, MAX_VERIFY_BODY))
            transport = Transport()
            conn.connection_made(transport)  # type: ignore[arg-type]
            asked = [(ip, path, _subrequest("/.scrapeshield/auth-request", path, ip))
                     for ip, path in map(client, range(warm + count))]
            gc.collect()
            gc.freeze()  # the prepared requests are nginx's
            feed = conn.data_received
            pages = writes = size = 0
            statuses: dict[int, int] = {}
            written: list[bytes] = []
            for i, (ip, path, data) in enumerate(asked):
                if i == warm:
                    pages = writes = size = 0
                    statuses.clear()
                clock.advance(0.0005)
                feed(data)
                sent = transport.take()
                if int(sent[-1][9:12]) == 403:  # error_page asks for the page
                    pages += 1
                    feed(_subrequest("/.scrapeshield/page", path, ip, [(ACTION, _action(sent[-1]))]))
                    sent += transport.take()
                writes += len(sent)
                if answers:
                    written += sent
                size += sum(map(len, sent))
                for answer in sent:
                    statuses[int(answer[9:12])] = statuses.get(int(answer[9:12]), 0) + 1
            conn.connection_lost(None)
            shield.close()
            gc.unfreeze()
        if answers:
            with open(answers, "wb") as out:
                out.writelines(repr(_masked(answer)).encode() + b"\n" for answer in written)
        return {"requests": count, "page_requests": pages, "statuses": dict(sorted(statuses.items())),
                "writes_per_request": round(writes / count, 3),
                "bytes_written_per_request": round(size / count, 1)}

    with asyncio.Runner(loop_factory=_fast_loop()) as runner:  # the loop serve-decisions runs on
        return runner.run(run())


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (2, 3):
        sys.exit(__doc__)
    print(main(int(args[0]), int(args[1]), *args[2:]))
