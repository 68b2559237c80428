"""Replies and pushes in the shapes of WeChat's official samples, as fixtures the gateway must read.

Each is written after the sample on the named page (its fields, their order, types and text/number
form; values are our own, so the billnos and openids fit this project's sandbox configuration):

- SENDREDPACK_SUCCESS: 现金红包 · 发放普通红包 · 返回结果示例 (pay.weixin.qq.com/wiki/doc/api/tools/
  cash_coupon.php?chapter=13_4&index=3): unsigned, `err_code` 0 on success, `total_amount` a bare number.
- GETHBINFO_TWO_HBINFO: 现金红包 · 查询红包记录 · 返回结果示例 (…cash_coupon.php?chapter=13_6&index=5):
  unsigned, `err_code` SUCCESS, `hblist` holding two `hbinfo` (a group packet received by two users).
- MEDIA_CHECK_PUSH: 小程序 · 内容安全 · 异步校验图片/音频 (mediaCheckAsync) 的结果推送, as captured from a
  real push (developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/sec-center/sec-check/mediaCheckAsync.html):
  `label` as a string ("20002"), `detail` a list.
"""
from app.config import SANDBOX_WECHAT

MCH_ID = SANDBOX_WECHAT["WECHAT_MCH_ID"]
APPID = SANDBOX_WECHAT["WECHAT_APPID"]
SEND_BILLNO = f"{MCH_ID}202612060000000417"
QUERY_BILLNO = f"{MCH_ID}202612060000000418"

SENDREDPACK_SUCCESS = f"""<xml>
<return_code><![CDATA[SUCCESS]]></return_code>
<return_msg><![CDATA[发放成功]]></return_msg>
<result_code><![CDATA[SUCCESS]]></result_code>
<err_code><![CDATA[0]]></err_code>
<err_code_des><![CDATA[发放成功]]></err_code_des>
<mch_billno><![CDATA[{SEND_BILLNO}]]></mch_billno>
<mch_id><![CDATA[{MCH_ID}]]></mch_id>
<wxappid><![CDATA[{APPID}]]></wxappid>
<re_openid><![CDATA[oSampleResident0000000000001]]></re_openid>
<total_amount>150</total_amount>
<send_listid><![CDATA[1000041701202612063011072101800]]></send_listid>
</xml>"""

GETHBINFO_TWO_HBINFO = f"""<xml>
<return_code><![CDATA[SUCCESS]]></return_code>
<return_msg><![CDATA[OK]]></return_msg>
<result_code><![CDATA[SUCCESS]]></result_code>
<err_code><![CDATA[SUCCESS]]></err_code>
<err_code_des><![CDATA[OK]]></err_code_des>
<mch_billno><![CDATA[{QUERY_BILLNO}]]></mch_billno>
<mch_id><![CDATA[{MCH_ID}]]></mch_id>
<detail_id><![CDATA[1000041701202612063011072101801]]></detail_id>
<status><![CDATA[RECEIVED]]></status>
<send_type><![CDATA[API]]></send_type>
<hb_type><![CDATA[GROUP]]></hb_type>
<total_num>2</total_num>
<total_amount>300</total_amount>
<send_time><![CDATA[2026-12-06 09:30:00]]></send_time>
<wishing><![CDATA[感谢您守护城市平安]]></wishing>
<act_name><![CDATA[隐患随手拍]]></act_name>
<remark><![CDATA[人人拍报料奖励]]></remark>
<hblist>
<hbinfo>
<openid><![CDATA[oSampleResident0000000000001]]></openid>
<amount>200</amount>
<rcv_time><![CDATA[2026-12-06 09:31:05]]></rcv_time>
</hbinfo>
<hbinfo>
<openid><![CDATA[oSampleResident0000000000002]]></openid>
<amount>100</amount>
<rcv_time><![CDATA[2026-12-06 09:40:12]]></rcv_time>
</hbinfo>
</hblist>
</xml>"""


def media_check_push(trace_id: str, openid: str, created: int) -> dict:
    return {"ToUserName": "gh_sandbox000001", "FromUserName": openid, "CreateTime": created, "MsgType": "event",
            "Event": "wxa_media_check", "appid": APPID, "trace_id": trace_id, "version": 2,
            "detail": [{"strategy": "content_model", "errcode": 0, "suggest": "risky", "label": "20002",
                        "prob": 90}],
            "errcode": 0, "errmsg": "ok", "result": {"suggest": "risky", "label": "20002"}}
