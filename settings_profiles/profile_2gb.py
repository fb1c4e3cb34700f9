"""2 GiB container: two Scrapy Cloud units.

RSS is about 100 MiB at 16 concurrent requests (~60 MiB base plus ~2.5 MiB
per in-flight 1.5 MiB product page).

* PLT_MAX_CONCURRENT_REQUESTS 128: the most requests in flight this budget
  holds: ~380 MiB steady state at 128, 20% of the budget. The extra memory
  allows more connections to a slow retailer, if the user asks for them; more
  than the single-threaded parser keeps up with would only queue responses in
  memory. A ceiling, not a target: CONCURRENT_REQUESTS and
  CONCURRENT_REQUESTS_PER_DOMAIN keep the user's values (Scrapy's 16 and 8 by
  default) and are lowered to it only when above it.
* MEMUSAGE_LIMIT_MB 1900: 93% of the container, Scrapy Cloud's margin
  (950/1024). WARNING 1600 (84%): between the governor's HIGH and PAUSE marks,
  throttling did not stop the growth.
* DOWNLOAD_MAXSIZE 8 MiB (5x a normal page): worst case of bodies alone at
  128 in flight is 1 GiB, about half the budget. WARNSIZE 3 MiB: twice a
  normal page, a sign the page template changed.
* SCRAPER_SLOT_MAX_ACTIVE_SIZE 40 MB (~2% of the budget): about 25 untrimmed
  pages waiting for the parser before downloads back off.
* Governor: budget = the memusage limit; HIGH/PAUSE/LOW at 80/90/60%; down to
  4 requests, back up 8 at a time (its top is CONCURRENT_REQUESTS after the cap).
"""

PLT_MAX_CONCURRENT_REQUESTS = 128

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
