"""现金红包 (WeChat Pay APIv2 mini-program red packets): the state machine in rewards/payouts.py and
the sweeper's gethbinfo checks in rewards/sweeper.py, behind the channel interface."""
from __future__ import annotations

from app.extensions import wechat
from rewards.channels import PayoutChannel


class RedpackChannel(PayoutChannel):
    name = "redpack"

    def send_payout(self, payout_id: int) -> str:
        from rewards import payouts

        return payouts.send_redpack(payout_id)

    def check_payout(self, payout_id: int, now=None) -> str:
        from rewards import sweeper

        return sweeper.check_redpack(payout_id, now)

    def query(self, billno: str):
        return wechat.get_hb_info(billno)

    def settle(self, payout_id: int, info) -> str:
        from rewards import payouts

        return payouts.apply_hb_info(payout_id, info)

    def receive_params(self, payout) -> dict:
        """A packet waiting to be opened: what wx.sendBizRedPacket takes, signed here with the
        merchant key (the key never reaches the phone)."""
        if payout.status == "sent" and payout.package:
            return {"redpacket": wechat.biz_redpacket_params(payout.package)}
        return {}

    def day_bill(self, day):
        return wechat.download_fundflow(day)
