// 我的奖励: the resident's rewards and the receipt step — a red packet opens with
// wx.sendBizRedPacket (the server signed its parameters); on the transfer channel (商家转账) the
// resident confirms with wx.requestMerchantTransfer.
const api = require('../../utils/api')
const format = require('../../utils/format')

function row(reward) {
  const claimable = !!(reward.transfer || (reward.status === 'sent' && reward.redpacket))
  return {
    id: reward.id, tip_id: reward.tip_id, status: reward.status, amount: format.yuan(reward.amount_fen),
    label: format.rewardLabel(reward), claimable,
  }
}

Component({
  data: {items: [], claimedTotal: format.yuan(0), loading: false},
  methods: {
    onShow() {
      return this.load()
    },
    onPullDownRefresh() {
      return this.load().then(() => wx.stopPullDownRefresh())
    },
    async load() {
      this.setData({loading: true})
      try {
        const {items} = await api.rewards()
        this.rewards = {}
        items.forEach(r => { this.rewards[r.id] = r })
        const claimed = items.filter(r => r.status === 'claimed').reduce((sum, r) => sum + r.amount_fen, 0)
        this.setData({items: items.map(row), claimedTotal: format.yuan(claimed), loading: false})
      } catch (error) {
        this.setData({loading: false})
        api.showError(error)
      }
    },
    onOpenTip(event) {
      wx.navigateTo({url: `/pages/tip/detail?id=${event.currentTarget.dataset.tip}`})
    },
    onClaim(event) {
      const reward = (this.rewards || {})[event.currentTarget.dataset.id]
      if (!reward) return null
      return this.claim(reward)
    },
    claim(reward) {
      return new Promise(resolve => {
        const done = () => {
          wx.showToast({title: '领取成功', icon: 'success'})
          resolve(this.load())
        }
        const failed = res => {
          // The resident closing WeChat's own sheet is not an error to shout about.
          if (!/cancel/.test((res && res.errMsg) || '')) {
            wx.showModal({title: '提示', content: '领取没有成功，请稍后在本页再试', showCancel: false})
          }
          resolve(this.load())
        }
        if (reward.transfer) {
          if (!wx.canIUse('requestMerchantTransfer')) {
            wx.showModal({title: '提示', content: '请升级微信到最新版本后再确认收款', showCancel: false})
            resolve()
            return
          }
          wx.requestMerchantTransfer({
            mchId: reward.transfer.mch_id, appId: reward.transfer.app_id, package: reward.transfer.package,
            success: done, fail: failed,
          })
        } else {
          wx.sendBizRedPacket({...reward.redpacket, success: done, fail: failed})
        }
      })
    },
  },
})
