// 我的: the privacy notice, a copy of everything held (我的数据) and closing the account (注销账号).
const api = require('../../utils/api')

Component({
  data: {notice: '', exported: '', closed: ''},
  methods: {
    async onPrivacy() {
      try {
        this.setData({notice: (await api.privacy()).text})
      } catch (error) {
        api.showError(error)
      }
    },

    async onExport() {
      try {
        const data = await api.exportMine()
        await new Promise(resolve => wx.setClipboardData({data: JSON.stringify(data, null, 2), complete: resolve}))
        this.setData({exported: `已复制：${data.tips.length} 条报料、${data.rewards.length} 条奖励记录、` +
                                `${data.messages.length} 条通知。可粘贴保存。`})
      } catch (error) {
        api.showError(error)
      }
    },

    confirm(content) {
      return new Promise(resolve => wx.showModal({
        title: '注销账号', content, confirmText: '确认注销', confirmColor: '#c62828',
        success: res => resolve(!!res.confirm), fail: () => resolve(false),
      }))
    },

    // A packet waiting to be opened cannot be opened after closing: say so before.
    async onClose() {
      try {
        const {items} = await api.rewards()
        const waiting = items.filter(r => r.status === 'sent' || r.transfer).length
        const warning = waiting ? `您还有 ${waiting} 个红包未领取，注销后将无法领取（24 小时后退回）。` : ''
        if (!await this.confirm(warning + '注销后无法恢复，再次登录将是一个全新的账号。确定注销吗？')) return
        const answer = await api.closeAccount()
        api.forgetSession()
        this.setData({closed: answer.message})
      } catch (error) {
        api.showError(error)
      }
    },
  },
})
