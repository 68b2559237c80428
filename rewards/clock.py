"""Business time for rewards: the one implementation is app.display (docs/DESIGN.md §Rules: store UTC,
count days and budget periods in Asia/Shanghai); these names stay for the callers that use them."""
from app.display import SHANGHAI, business_day as shanghai_day, day_bounds_utc, period_of

__all__ = ["SHANGHAI", "shanghai_day", "day_bounds_utc", "period_of"]
