"""volley's WebTransport against a stack volley did not write: aioquic's HTTP/3.

Starts the demo server (the binary given, built from `cargo build --example
server`) over WebTransport, then, with aioquic: sees a session on another path
refused with HTTP 404, opens a session on /volley,
opens the one bidirectional stream, shakes hands with a Hello, makes a call and
reads its typed answer, fires unreliable Move events as WebTransport datagrams
and checks in the server's figures (its inspector) that they arrived as
datagrams, says Goodbye, and stops the server by its process id.

    python3 -m venv target/py && target/py/bin/pip install aioquic==1.3.0
    target/py/bin/python volley/tests/peers/aioquic_webtransport.py target/debug/examples/server

The frames are written by hand from PROTOCOL.md; the remote ids and the
remotes hash come from the demo's generated TypeScript module.
"""

import asyncio
import json
import pathlib
import re
import signal
import ssl
import struct
import subprocess
import sys
import urllib.request

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamDataReceived

REPO = pathlib.Path(__file__).resolve().parents[3]
MOVES = 50


def demo_protocol():
    """The remotes hash and the ids this check uses, from the generated module."""
    module = (REPO / "clients/typescript/examples/demo_protocol.ts").read_text()
    hash_ = int(re.search(r"REMOTES_HASH = 0x([0-9a-f]+)n", module).group(1), 16)
    get_player_data = int(re.search(r'serverFn\("GetPlayerData", (\d+)', module).group(1))
    move = int(re.search(r'serverEvent\("Move", (\d+)', module).group(1))
    return hash_, get_player_data, move


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def frame(body):
    return varint(len(body)) + body


def text(s):
    raw = s.encode()
    return varint(len(raw)) + raw


class Peer(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic, enable_webtransport=True)
        self.session_status = asyncio.get_running_loop().create_future()
        self.session_id = None
        self.stream_id = None
        self.received = bytearray()
        self.frames = asyncio.Queue()

    def quic_event_received(self, event):
        # The server's bytes on the stream this client opened: aioquic's H3
        # layer reads a bidirectional stream's incoming data as HTTP/3 frames
        # unless the peer opened it, so they are taken here, before it.
        if isinstance(event, StreamDataReceived) and event.stream_id == self.stream_id:
            self.receive(event.data)
            return
        for e in self.h3.handle_event(event):
            if isinstance(e, HeadersReceived) and e.stream_id == self.session_id:
                status = dict(e.headers).get(b":status", b"?").decode()
                if not self.session_status.done():
                    self.session_status.set_result(status)

    def receive(self, data):
        self.received += data
        while self.received:
            length, at = read_varint(self.received, 0)
            if len(self.received) < at + length:
                break
            self.frames.put_nowait(bytes(self.received[at : at + length]))
            del self.received[: at + length]

    async def open_session(self, authority, path):
        self.session_id = self._quic.get_next_available_stream_id()
        self.h3.send_headers(
            self.session_id,
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"webtransport"),
                (b":scheme", b"https"),
                (b":authority", authority.encode()),
                (b":path", path.encode()),
            ],
        )
        self.transmit()
        return await asyncio.wait_for(self.session_status, 5)

    def open_stream(self):
        self.stream_id = self.h3.create_webtransport_stream(self.session_id, is_unidirectional=False)

    def send(self, body):
        self._quic.send_stream_data(self.stream_id, frame(body))
        self.transmit()

    def send_datagram(self, body):
        self.h3.send_datagram(self.session_id, frame(body))
        self.transmit()

    async def next_frame(self, skip_tags=(8, 9)):
        """The next frame's body, past pings and pongs."""
        while True:
            body = await asyncio.wait_for(self.frames.get(), 5)
            if body[0] not in skip_tags:
                return body


def start_server(binary):
    server = subprocess.Popen(
        [binary, "--addr", "127.0.0.1:0", "--transport", "webtransport", "--inspector", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = cert = inspector = None
    for line in server.stdout:
        if m := re.match(r"certificate for the demo client written to (\S+)", line):
            cert = m.group(1)
        if m := re.match(r"browser pages: (https://\S+) ", line):
            url = m.group(1)
        if m := re.match(r"inspector on (http://\S+/)", line):
            inspector = m.group(1)
        if url and cert and inspector:
            return server, url, cert, inspector
    raise SystemExit("the demo server did not start")


async def check(url, cert, inspector):
    hash_, get_player_data, move = demo_protocol()
    authority = url.split("/")[2]
    host, port = authority.rsplit(":", 1)
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536)
    # The server's own self-signed certificate is the one root trusted.
    config.load_verify_locations(cadata=ssl.DER_cert_to_PEM_cert(pathlib.Path(cert).read_bytes()).encode())
    config.server_name = "localhost"
    async with connect(host, int(port), configuration=config, create_protocol=Peer) as peer:
        status = await peer.open_session(authority, "/elsewhere")
        assert status == "404", f"a session on another path got HTTP {status}"
        print("aioquic: a session on /elsewhere is refused with HTTP 404")
    async with connect(host, int(port), configuration=config, create_protocol=Peer) as peer:
        status = await peer.open_session(authority, "/volley")
        assert status == "200", f"session refused: HTTP {status}"
        peer.open_stream()
        # Hello: version 3, the remotes hash (u64 LE), the token.
        peer.send(bytes([0]) + varint(3) + struct.pack("<Q", hash_) + b"aioquic")
        welcome = await peer.next_frame()
        assert welcome[0] == 1, f"expected Welcome, got {welcome!r}"
        player, _ = read_varint(welcome, 1)
        print(f"aioquic: session on {url}, welcomed as player {player}")

        # Request GetPlayerData { name: "aioquic" } as call 1; the answer is
        # PlayerData { name, level, gold }.
        peer.send(bytes([4]) + varint(1) + varint(get_player_data) + text("aioquic"))
        answer = await peer.next_frame()
        assert answer[:2] == bytes([5, 1]), f"expected the answer to call 1, got {answer!r}"
        length, at = read_varint(answer, 2)
        name = answer[at : at + length].decode()
        level, at = read_varint(answer, at + length)
        gold, at = read_varint(answer, at)
        assert (name, level, gold, at) == ("aioquic", 7, 25, len(answer)), answer
        print(f"aioquic: GetPlayerData answered {{name: {name}, level: {level}, gold: {gold}}}")

        # Unreliable Move { x, y } events (f32 LE each), one per datagram.
        for i in range(MOVES):
            peer.send_datagram(bytes([3]) + varint(move) + struct.pack("<ff", i, 0.5))
            await asyncio.sleep(0.002)
        datagrams = 0
        for _ in range(100):
            snapshot = json.load(urllib.request.urlopen(inspector + "snapshot"))
            mine = [c for c in snapshot["figures"]["connections"] if c["identity"] == "aioquic"]
            datagrams = mine[0]["datagrams_in"] if mine else 0
            if datagrams >= MOVES:
                break
            await asyncio.sleep(0.02)
        assert datagrams == MOVES, f"the server counted {datagrams} of {MOVES} datagrams"
        print(f"aioquic: the server received {datagrams} of {MOVES} Move events as datagrams")

        # Goodbye, Normal.
        peer.send(bytes([10, 0]) + b"done")
        await asyncio.sleep(0.1)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(REPO / "target/debug/examples/server")
    server, url, cert, inspector = start_server(binary)
    try:
        asyncio.run(asyncio.wait_for(check(url, cert, inspector), 30))
    except BaseException:
        server.kill()
        server.wait()
        pathlib.Path(cert).unlink(missing_ok=True)
        raise
    print("aioquic: every check passed")
    # Ctrl-C's signal: the server stops as it would for a user, and removes
    # the certificate file it wrote.
    server.send_signal(signal.SIGINT)
    assert server.wait(timeout=10) == 0, "the server did not stop cleanly on Ctrl-C"
    assert not pathlib.Path(cert).exists(), f"the server left its certificate at {cert}"
    print("aioquic: the server stopped on Ctrl-C and removed its certificate file")


if __name__ == "__main__":
    main()
