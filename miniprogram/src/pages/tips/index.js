// 我的报料: the resident's tips, newest first, a page at a time.
const api = require('../../utils/api')
const format = require('../../utils/format')

function row(tip) {
  return {
    id: tip.id, category_name: tip.category_name || tip.category, status_label: tip.status_label,
    description: tip.description || '（无文字描述）', time: format.beijingTime(tip.created_at),
    thumb: tip.photos.length ? tip.photos[0].thumb_url : '',
  }
}

Component({
  data: {items: [], next: null, loading: false},
  methods: {
    onShow() {
      return this.load(true)
    },
    onPullDownRefresh() {
      return this.load(true).then(() => wx.stopPullDownRefresh())
    },
    onReachBottom() {
      if (this.data.next) return this.load(false)
      return null
    },
    async load(fresh) {
      if (this.data.loading) return
      this.setData({loading: true})
      try {
        const page = await api.tips(fresh ? null : this.data.next)
        const items = (fresh ? [] : this.data.items).concat(page.items.map(row))
        this.setData({items, next: page.next, loading: false})
      } catch (error) {
        this.setData({loading: false})
        api.showError(error)
      }
    },
    onOpen(event) {
      wx.navigateTo({url: `/pages/tip/detail?id=${event.currentTarget.dataset.id}`})
    },
  },
})
