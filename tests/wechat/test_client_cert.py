"""The merchant's client certificate reaches WeChat Pay: the sandbox over HTTPS, checking it as WeChat does.

A throwaway CA signs the sandbox's server certificate and the merchant certificates (CN = mch_id, as
WeChat issues them). Without a certificate, or with another merchant's, pay calls are CA_ERROR.
"""
import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.config import SANDBOX_WECHAT
from app.extensions import wechat
from app.wechat import PayOutcome
from tests.fixtures.sandbox import SandboxServer, new_billno

MCH_ID = SANDBOX_WECHAT["WECHAT_MCH_ID"]


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject_cn, key, issuer_cn, issuer_key, *, ca=False, ip=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(folder, name, cert, key):
    cert_path, key_path = folder / f"{name}_cert.pem", folder / f"{name}_key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca_key = _key()
    ca = _cert("sandbox test CA", ca_key, "sandbox test CA", ca_key, ca=True)
    ca_path, _ = _write(folder, "ca", ca, ca_key)
    files = {"ca": ca_path}
    server_key = _key()
    files["server"] = _write(folder, "server", _cert("127.0.0.1", server_key, "sandbox test CA", ca_key,
                                                     ip="127.0.0.1"), server_key)
    for name, cn in (("merchant", MCH_ID), ("other_merchant", "1900000999")):
        key = _key()
        files[name] = _write(folder, name, _cert(cn, key, "sandbox test CA", ca_key), key)
    return files


@pytest.fixture(scope="module")
def tls_sandbox(pki, tmp_path_factory):
    server_cert, server_key = pki["server"]
    server = SandboxServer(tmp_path_factory.mktemp("tls_sandbox") / "state.db", scheme="https", verify=pki["ca"],
                           env={"SANDBOX_TLS_CERT": server_cert, "SANDBOX_TLS_KEY": server_key,
                                "SANDBOX_CLIENT_CA": pki["ca"]}).start()
    yield server
    server.stop()


@pytest.fixture
def pay_app(make_app, sandbox_config, tls_sandbox, pki, db, monkeypatch):
    """A callable: an app whose pay calls go to the HTTPS sandbox, with the given certificate files."""
    tls_sandbox.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki["ca"])  # trust the sandbox's server certificate

    def _make(cert=None, key=None):
        return make_app(**{**sandbox_config, "WECHAT_PAY_API_BASE": tls_sandbox.url + "/",
                           "WECHAT_PAY_TIMEOUT": 10.0, "WECHAT_PAY_CERT": cert, "WECHAT_PAY_KEY_FILE": key})

    return _make


def _send(billno):
    return wechat.send_miniprogram_hb(billno, "oCert", 150, act_name="a", remark="r", wishing="w")


@pytest.mark.slow
def test_configured_certificate_is_presented(pay_app, pki, tls_sandbox):
    with pay_app(*pki["merchant"]).app_context():
        billno = new_billno()
        sent = _send(billno)
        assert sent.outcome is PayOutcome.SUCCESS and sent.package
        assert wechat.get_hb_info(billno).status == "SENT"
    assert [p["mch_billno"] for p in tls_sandbox.redpacks()] == [billno]


@pytest.mark.slow
def test_without_a_certificate_wechat_answers_ca_error(pay_app, tls_sandbox):
    with pay_app().app_context():
        result = _send(new_billno())
    assert (result.outcome, result.code) == (PayOutcome.CONFIG_ERROR, "CA_ERROR")
    assert tls_sandbox.redpacks() == []


@pytest.mark.slow
def test_another_merchants_certificate_is_ca_error(pay_app, pki, tls_sandbox):
    with pay_app(*pki["other_merchant"]).app_context():
        result = _send(new_billno())
        bill = wechat.download_fundflow("2026-01-01")
    assert (result.outcome, result.code) == (PayOutcome.CONFIG_ERROR, "CA_ERROR")
    assert (bill.outcome, bill.code) == (PayOutcome.CONFIG_ERROR, "CA_ERROR")
    assert tls_sandbox.redpacks() == []
