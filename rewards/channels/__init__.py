"""The payout channel seam: how a granted reward reaches the resident.

The payout state machine, the ledger, the caps, the sweeper, reconciliation and the finance console
talk to a channel through this interface and never to WeChat's pay APIs directly:

  send_payout(payout_id)      send with the payout's bill number (committed with the approval, reused
                              on every retry and duplicate delivery: WeChat pays it at most once)
  check_payout(payout_id, now)  the sweeper's query of one payout, settling it if WeChat has
  query(billno)               ask WeChat about one bill → PayResult
  settle(payout_id, info)     apply WeChat's answer (a settlement event) to the payout and its money
  receive_params(payout)      what the resident must do to receive, for the residents' API
  day_bill(day)               the day's fund-flow bill (reconciliation)

Two channels: `redpack` (现金红包, APIv2, rewards/channels/redpack.py) and `transfer` (商家转账,
APIv3, rewards/channels/transfer.py). PAYOUT_CHANNEL chooses the channel of NEW payouts; each payout
keeps the one it was granted on (payouts.channel), so switching never strands one in flight.
"""
from __future__ import annotations

from flask import current_app

CHANNEL_LABELS = {"redpack": "现金红包", "transfer": "商家转账"}


class PayoutChannel:
    name = ""

    def send_payout(self, payout_id: int) -> str:
        raise NotImplementedError

    def check_payout(self, payout_id: int, now=None) -> str:
        raise NotImplementedError

    def query(self, billno: str):
        raise NotImplementedError

    def settle(self, payout_id: int, info) -> str:
        raise NotImplementedError

    def receive_params(self, payout) -> dict:
        return {}

    def day_bill(self, day):
        raise NotImplementedError


def channel_named(name: str | None) -> PayoutChannel:
    if name == "transfer":
        from rewards.channels.transfer import TransferChannel

        return TransferChannel()
    from rewards.channels.redpack import RedpackChannel

    return RedpackChannel()


def channel_of(payout) -> PayoutChannel:
    """The channel a payout was granted on (its own, whatever PAYOUT_CHANNEL says now)."""
    return channel_named(getattr(payout, "channel", None) or "redpack")


def new_payout_channel() -> str:
    """The channel new payouts are granted on."""
    return current_app.config.get("PAYOUT_CHANNEL") or "redpack"


def configured_channel() -> PayoutChannel:
    return channel_named(new_payout_channel())
