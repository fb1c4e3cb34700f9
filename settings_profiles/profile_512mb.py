"""512 MiB container.

RSS is about 100 MiB at 16 concurrent requests (~60 MiB base plus ~2.5 MiB
per in-flight 1.5 MiB product page).

* PLT_MAX_CONCURRENT_REQUESTS 32: the most requests in flight this budget
  holds: ~140 MiB steady state at 32, 30% of the budget, so a burst of slow
  parses or a few oversized pages still fits under the governor's HIGH mark
  (380 MiB). A ceiling, not a target: CONCURRENT_REQUESTS and
  CONCURRENT_REQUESTS_PER_DOMAIN keep the user's values (Scrapy's 16 and 8 by
  default) and are lowered to it only when above it.
* MEMUSAGE_LIMIT_MB 475: 93% of the container, Scrapy Cloud's margin
  (950/1024), so Scrapy stops cleanly before the OOM killer. WARNING 400
  (84%): between HIGH and PAUSE, throttling did not stop the growth.
* DOWNLOAD_MAXSIZE 8 MiB (5x a normal page): worst case of bodies alone at 32
  in flight is 256 MiB, about half the budget. WARNSIZE 3 MiB: twice a normal
  page, a sign the page template changed.
* SCRAPER_SLOT_MAX_ACTIVE_SIZE 10 MB (~2% of the budget): about six untrimmed
  pages waiting for the parser before downloads back off.
* Governor: budget = the memusage limit; HIGH/PAUSE/LOW at 80/90/60%; down to
  1 request, back up 2 at a time (its top is CONCURRENT_REQUESTS after the cap).
"""

PLT_MAX_CONCURRENT_REQUESTS = 32

MEMUSAGE_LIMIT_MB = 475
MEMUSAGE_WARNING_MB = 400

DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 3 * 1024 * 1024

SCRAPER_SLOT_MAX_ACTIVE_SIZE = 10_000_000

PLT_MEMORY_BUDGET_MB = 475
PLT_GOVERNOR_HIGH = 0.80
PLT_GOVERNOR_PAUSE = 0.90
PLT_GOVERNOR_LOW = 0.60
PLT_GOVERNOR_MIN_CONCURRENCY = 1
PLT_GOVERNOR_RAISE_STEP = 2
