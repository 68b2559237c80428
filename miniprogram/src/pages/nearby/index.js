// 附近: open tickets of a category near the resident (where they are now), nearest first.
const api = require('../../utils/api')
const format = require('../../utils/format')

Component({
  data: {categories: [], categoryNames: [], categoryIndex: 0, items: [], where: '正在定位…', searched: false},
  methods: {
    async onShow() {
      if (!this.data.categories.length) {
        try {
          const {items} = await api.categories()
          this.setData({categories: items, categoryNames: items.map(c => c.name)})
        } catch (error) {
          api.showError(error)
          return
        }
      }
      await this.locate()
      await this.search()
    },
    onPullDownRefresh() {
      return this.locate().then(() => this.search()).then(() => wx.stopPullDownRefresh())
    },
    locate() {
      return new Promise(resolve => wx.getLocation({
        type: 'gcj02',
        success: res => {
          this.here = {lat: res.latitude, lng: res.longitude}
          this.setData({where: '以您当前的位置查找'})
          resolve()
        },
        fail: () => {
          this.here = null
          this.setData({where: '无法获取位置：请在设置中允许使用位置信息'})
          resolve()
        },
      }))
    },
    onCategoryChange(event) {
      this.setData({categoryIndex: Number(event.detail.value)})
      return this.search()
    },
    async search() {
      const category = this.data.categories[this.data.categoryIndex]
      if (!category || !this.here) return
      try {
        const {items} = await api.nearby(this.here.lat, this.here.lng, category.code)
        this.setData({searched: true, items: items.map(h => ({
          id: h.id, distance: format.distance(h.distance_m), label: format.hazardLabel(h),
          time: format.beijingTime(h.created_at),
        }))})
      } catch (error) {
        api.showError(error)
      }
    },
  },
})
