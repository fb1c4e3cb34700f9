"""1 GiB container: one Scrapy Cloud unit, the default profile.

RSS is about 100 MiB at 16 concurrent requests (~60 MiB base plus ~2.5 MiB
per in-flight 1.5 MiB product page).

* PLT_MAX_CONCURRENT_REQUESTS 64: the most requests in flight this budget
  holds: ~220 MiB steady state at 64, 23% of the budget. The headroom absorbs
  slow parses, oversized pages and glibc fragmentation over a 20,000-page run;
  more connections than the single-threaded parser keeps up with would only
  queue responses in memory. A ceiling, not a target: CONCURRENT_REQUESTS and
  CONCURRENT_REQUESTS_PER_DOMAIN keep the user's values (Scrapy's 16 and 8 by
  default) and are lowered to it only when above it.
* MEMUSAGE_LIMIT_MB 950: what Scrapy Cloud sets on a 1 GiB unit (93%), so the
  profile behaves the same locally and there. WARNING 800 (84%): between the
  governor's HIGH (760) and PAUSE (855) marks, throttling did not stop the
  growth.
* DOWNLOAD_MAXSIZE 8 MiB (5x a normal page): worst case of bodies alone at 64
  in flight is 512 MiB, about half the budget. WARNSIZE 3 MiB: twice a normal
  page, a sign the page template changed.
* SCRAPER_SLOT_MAX_ACTIVE_SIZE 20 MB (~2% of the budget): about thirteen
  untrimmed pages waiting for the parser before downloads back off.
* Governor: budget = the memusage limit; HIGH/PAUSE/LOW at 80/90/60%; down to
  2 requests, back up 4 at a time (its top is CONCURRENT_REQUESTS after the cap).
"""

PLT_MAX_CONCURRENT_REQUESTS = 64

MEMUSAGE_LIMIT_MB = 950
MEMUSAGE_WARNING_MB = 800

DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 3 * 1024 * 1024

SCRAPER_SLOT_MAX_ACTIVE_SIZE = 20_000_000

PLT_MEMORY_BUDGET_MB = 950
PLT_GOVERNOR_HIGH = 0.80
PLT_GOVERNOR_PAUSE = 0.90
PLT_GOVERNOR_LOW = 0.60
PLT_GOVERNOR_MIN_CONCURRENCY = 2
PLT_GOVERNOR_RAISE_STEP = 4
