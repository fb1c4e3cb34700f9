"""2 GiB container: two Scrapy Cloud units.

RSS is about 100 MiB at 16 concurrent requests (~60 MiB base plus ~2.5 MiB
per in-flight 1.5 MiB product page).

* CONCURRENT_REQUESTS 128: ~380 MiB steady state, 20% of the budget. The
  extra memory buys connections for a slow retailer; more than the
  single-threaded parser keeps up with would only queue responses in memory.
* CONCURRENT_REQUESTS_PER_DOMAIN = CONCURRENT_REQUESTS: one retailer, so the
  total is the cap that matters for memory.
* MEMUSAGE_LIMIT_MB 1900: 93% of the container, Scrapy Cloud's margin
  (950/1024). WARNING 1600 (84%): between the governor's HIGH and PAUSE marks,
  throttling did not stop the growth.
* DOWNLOAD_MAXSIZE 8 MiB (5x a normal page): worst case of bodies alone at
  128 in flight is 1 GiB, about half the budget. WARNSIZE 3 MiB: twice a
  normal page, a sign the page template changed.
* SCRAPER_SLOT_MAX_ACTIVE_SIZE 40 MB (~2% of the budget): about 25 untrimmed
  pages waiting for the parser before downloads back off.
* Governor: budget = the memusage limit; HIGH/PAUSE/LOW at 80/90/60%; down to
  4 requests, back up 8 at a time (128 is the top, ~48 s from the floor).
"""

CONCURRENT_REQUESTS = 128
CONCURRENT_REQUESTS_PER_DOMAIN = 128

MEMUSAGE_LIMIT_MB = 1900
MEMUSAGE_WARNING_MB = 1600

DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 3 * 1024 * 1024

SCRAPER_SLOT_MAX_ACTIVE_SIZE = 40_000_000

PLT_MEMORY_BUDGET_MB = 1900
PLT_GOVERNOR_HIGH = 0.80
PLT_GOVERNOR_PAUSE = 0.90
PLT_GOVERNOR_LOW = 0.60
PLT_GOVERNOR_MIN_CONCURRENCY = 4
PLT_GOVERNOR_RAISE_STEP = 8
