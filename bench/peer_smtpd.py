"""
The Python peer of issue 8: aiosmtpd (bench-only dependency, `pip install
aiosmtpd`) whose handler writes every message to its own file, fsyncs it and
renames it into place (Maildir style: tmp/ then new/), in the event loop's
default thread pool so the loop never blocks, and answers 250 after that.

    python bench/peer_smtpd.py DIR       # prints the port once listening

It listens on 127.0.0.1, port 0.  SIGTERM stops it.
"""

import asyncio
import itertools
import os
import signal
import sys

from aiosmtpd.smtp import SMTP

COUNTER = itertools.count()


class FsyncHandler:
    """One file + fsync + rename per message."""

    def __init__(self, root):
        self.tmp = os.path.join(root, "tmp")
        self.new = os.path.join(root, "new")
        os.makedirs(self.tmp, exist_ok=True)
        os.makedirs(self.new, exist_ok=True)

    def write(self, data):
        name = "%d.%d" % (os.getpid(), next(COUNTER))
        path = os.path.join(self.tmp, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(path, os.path.join(self.new, name))

    async def handle_DATA(self, server, session, envelope):
        await asyncio.get_running_loop().run_in_executor(None, self.write,
                                                         envelope.original_content)
        return "250 2.0.0 Ok: queued"


async def serve(root):
    loop = asyncio.get_running_loop()
    handler = FsyncHandler(root)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="peer.test", data_size_limit=64 * 1024 * 1024),
        host="127.0.0.1", port=0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
