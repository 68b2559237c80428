// 报料详情: status, photos, the moderator's words, the ticket, the reward and the timeline.
// The subscribe messages open this page (pages/tip/detail?id=…).
const api = require('../../utils/api')
const format = require('../../utils/format')

const OPEN = ['received', 'checking', 'pending_review']

function view(tip) {
  const place = tip.location.address || `${tip.location.lat.toFixed(5)}, ${tip.location.lng.toFixed(5)}`
  return {
    id: tip.id, category_name: tip.category_name || tip.category, status: tip.status, status_label: tip.status_label,
    description: tip.description || '（无文字描述）', place, time: format.beijingTime(tip.created_at),
    photos: tip.photos, message: tip.message,
    hazard: tip.hazard ? {id: tip.hazard.id, label: format.hazardLabel(tip.hazard)} : null,
    reward: tip.reward ? {status: tip.reward.status, amount: format.yuan(tip.reward.amount_fen),
                          label: format.rewardLabel(tip.reward)} : null,
    timeline: tip.timeline.map(step => ({status: step.status, note: step.note, time: format.beijingTime(step.at)})),
    canWithdraw: OPEN.indexOf(tip.status) >= 0,
  }
}

Component({
  data: {tip: null},
  methods: {
    onLoad(query) {
      this.tipId = Number(query.id)
      return this.load()
    },
    onPullDownRefresh() {
      return this.load().then(() => wx.stopPullDownRefresh())
    },
    async load() {
      try {
        this.setData({tip: view(await api.tip(this.tipId))})
      } catch (error) {
        api.showError(error)
      }
    },
    onPreview(event) {
      const urls = this.data.tip.photos.map(p => p.url)
      wx.previewImage({urls, current: urls[Number(event.currentTarget.dataset.index)]})
    },
    onRewards() {
      wx.switchTab({url: '/pages/rewards/index'})
    },
    onWithdraw() {
      return new Promise(resolve => wx.showModal({
        title: '撤回报料', content: '撤回后将不再处理这条报料，确定撤回吗？',
        success: async res => {
          if (res.confirm) {
            try {
              await api.withdraw(this.tipId)
              await this.load()
            } catch (error) {
              api.showError(error)
            }
          }
          resolve()
        },
      }))
    },
  },
})
