"""Logs never carry secrets or a reporter's openid, whatever the format string looks like."""
import logging

from app.log import RequestContextFilter, redact, redact_query


def _record(msg, *args):
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)


def test_redact_masks_credentials_and_openids():
    text = redact("openid=o-abc123 access_token=XYZ secret: s3cr3t password='hunter2' code=ok")
    assert "o-abc123" not in text and "XYZ" not in text and "s3cr3t" not in text and "hunter2" not in text
    assert "code=ok" in text


def test_filter_redacts_the_formatted_message_and_keeps_placeholders_working():
    record = _record("login ok openid=%s session_key=%s for %d", "o-resident-9", "sk-777", 3)
    assert RequestContextFilter().filter(record)
    message = record.getMessage()
    assert "o-resident-9" not in message and "sk-777" not in message
    assert message.endswith("for 3")


def test_plain_messages_keep_their_arguments():
    record = _record("tip %s accepted", 42)
    RequestContextFilter().filter(record)
    assert record.getMessage() == "tip 42 accepted"


def test_redact_masks_openids_and_signatures_in_wechat_pay_xml():
    body = ("b'<xml>\\n<mch_billno>1900000109202612050000000001</mch_billno>\\n"
            "<re_openid><![CDATA[o-resident-x]]></re_openid>\\n<sign>ABCDEF0123</sign>\\n"
            "<openid>o-other-y</openid><total_amount>100</total_amount></xml>'")
    text = redact(body)
    assert "o-resident-x" not in text and "o-other-y" not in text and "ABCDEF0123" not in text
    assert "<re_openid>***</re_openid>" in text and "<total_amount>100</total_amount>" in text
    assert "<mch_billno>1900000109202612050000000001</mch_billno>" in text


def test_redact_masks_signed_query_strings():
    line = ("POST /wechat/push?signature=5a1b&timestamp=1767225600&nonce=40713&openid=oPusher&encrypt_type=aes"
            "&msg_signature=77cc HTTP/1.1")
    text = redact(line)
    for value in ("5a1b", "1767225600", "40713", "oPusher", "77cc"):
        assert value not in text
    assert text.startswith("POST /wechat/push?signature=***&") and "encrypt_type=aes" in text
    assert redact("GET /media/p/1.jpg?exp=1767225600&sig=Zm9v HTTP/1.1") == \
        "GET /media/p/1.jpg?exp=1767225600&sig=*** HTTP/1.1"
    assert redact_query("nonce=1&page=2") == "nonce=***&page=2"


def test_gunicorn_access_atoms_are_redacted():
    """The logger deploy/gunicorn.conf.py names masks the request line, query string and referer."""
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    from app.gunicorn_log import RedactingLogger

    environ = {"REQUEST_METHOD": "POST", "RAW_URI": "/wechat/push?signature=5a1b&nonce=40713",
               "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/wechat/push", "QUERY_STRING": "signature=5a1b&nonce=40713",
               "HTTP_REFERER": "https://x.test/media/a.jpg?sig=Zm9v", "REMOTE_ADDR": "203.0.113.1"}
    request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    response = SimpleNamespace(status="200 OK", sent=7, headers=[])
    atoms = RedactingLogger(Config()).atoms(response, request, environ, timedelta(milliseconds=3))
    for name in ("r", "q", "f", "{referer}i"):
        assert "5a1b" not in atoms[name] and "40713" not in atoms[name] and "Zm9v" not in atoms[name], name
