"""Settings profiles, one per memory budget.

A profile named ``NAME`` lives in the module ``profile_NAME`` of this package
and holds module-level UPPERCASE settings. ``plt.profiles.ProfileAddon``
applies the one named by the ``PROFILE`` setting (default ``"1gb"``).

A profile says how much memory allows, never how hard to hit the retailer:

* ``PLT_MAX_CONCURRENT_REQUESTS`` is the most requests in flight its budget
  holds. It is a ceiling: CONCURRENT_REQUESTS and CONCURRENT_REQUESTS_PER_DOMAIN
  keep what the user set (or Scrapy's polite defaults, 16 in all and 8 per
  host) and are lowered to it only when above it. A profile never sets them.
* The memory limits (MEMUSAGE_*, DOWNLOAD_MAXSIZE/WARNSIZE,
  SCRAPER_SLOT_MAX_ACTIVE_SIZE, PLT_MEMORY_BUDGET_MB) and the governor's
  bounds, which can only lower the concurrency further.
"""
