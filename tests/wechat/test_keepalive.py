"""app/wechat/keepalive.py over real HTTP: one connection for many calls, a new one when the server
closed the old (a restart), and never a connection shared across threads or a fork."""
from __future__ import annotations

import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.wechat.keepalive import PooledRequests, install_keepalive, pooled_session


class PeerRecorder:
    """An HTTP/1.1 keep-alive server on a given port that records each request's client address
    (werkzeug's development server closes every connection, as WeChat's servers do not)."""

    def __init__(self, port=0):
        self.peers, self.connections = [], []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                recorder.connections.append(self.connection)

            def _answer(self):
                recorder.peers.append(self.client_address)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        """As a process that ends: the listening socket and every open connection go."""
        self.server.shutdown()
        self.server.server_close()
        for connection in self.connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def recorder():
    servers = [PeerRecorder()]
    yield servers
    for server in servers:
        server.stop()


def test_many_calls_go_over_one_connection(recorder):
    http = PooledRequests()
    for _ in range(5):
        assert http.post(recorder[0].url, json={"a": 1}, timeout=5).status_code == 200
        assert http.get(recorder[0].url, timeout=5).status_code == 200
    assert len(recorder[0].peers) == 10
    assert len(set(recorder[0].peers)) == 1


def test_a_restarted_server_gets_a_new_connection_not_an_error(recorder):
    http = PooledRequests()
    assert http.get(recorder[0].url, timeout=5).status_code == 200
    port = recorder[0].port
    recorder[0].stop()
    recorder[0] = PeerRecorder(port)     # same address, the old connection is gone
    assert http.get(recorder[0].url, timeout=5).status_code == 200
    assert len(recorder[0].peers) == 1


def test_each_thread_has_its_own_session():
    mine = pooled_session()
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(pooled_session()))
    thread.start()
    thread.join()
    assert pooled_session() is mine
    assert theirs and theirs[0] is not mine


def test_a_forked_child_does_not_use_the_parents_connections():
    parent = id(pooled_session())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it got a session of its own, then leave at once
        # (the parent's session is still referenced while the child's is made: their ids differ)
        os.write(write, b"own" if id(pooled_session()) != parent else b"shared")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.waitpid(pid, 0)
    assert answer == b"own"


def test_wechatpayv3_calls_go_through_it():
    import wechatpayv3.core

    install_keepalive()
    install_keepalive()
    assert isinstance(wechatpayv3.core.requests, PooledRequests)
    assert wechatpayv3.core.requests.exceptions is __import__("requests").exceptions
