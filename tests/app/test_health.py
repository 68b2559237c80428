import subprocess
import time

from app.embedded import redis_server_binary


def test_healthz_and_readyz_ok(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]
    assert len(made) == 32


def test_readyz_reports_a_dead_redis_and_healthz_keeps_serving(make_app, tmp_path, db):
    sock = tmp_path / "r.sock"
    server = subprocess.Popen([redis_server_binary(), "--port", "0", "--unixsocket", str(sock), "--save", ""],
                              stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        app = make_app(REDIS_URL=f"unix://{sock}", REDIS_SOCKET_TIMEOUT=1, RATELIMIT_STORAGE_URI="memory://")
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        server.kill()
        server.wait()
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("failed")
        assert client.get("/healthz").status_code == 200
    finally:
        if server.poll() is None:
            server.kill()
