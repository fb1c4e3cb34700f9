"""256 MiB container: the smallest budget PLT runs in.

RSS is about 100 MiB at 16 concurrent requests (interpreter, Scrapy, lxml
~60 MiB, plus ~2.5 MiB per in-flight 1.5 MiB product page: the raw body, its
decoded copy and, during parsing, the lxml tree before the page is trimmed to
its product block).

* PLT_MAX_CONCURRENT_REQUESTS 16: the most requests in flight this budget
  holds. The measured ~100 MiB steady state at 16 is 42% of the budget, under
  the governor's LOW mark (60%), leaving ~90 MiB for one oversized page's parse
  tree and glibc fragmentation. 32 would be ~140 MiB, already at LOW, with no
  room for a spike. A ceiling, not a target: CONCURRENT_REQUESTS and
  CONCURRENT_REQUESTS_PER_DOMAIN keep the user's values (Scrapy's 16 and 8 by
  default) and are lowered to it only when above it.
* MEMUSAGE_LIMIT_MB 238: 93% of the container, the same margin Scrapy Cloud
  keeps on a 1 GiB unit (950/1024), so Scrapy stops cleanly before the
  kernel's OOM killer. WARNING 200 (84%): between the governor's HIGH and
  PAUSE marks, it means throttling did not stop the growth.
* DOWNLOAD_MAXSIZE 8 MiB (5x a normal page): at 16 in flight the worst case
  of bodies alone is 128 MiB, about half the budget. WARNSIZE 3 MiB: twice a
  normal page, a sign the page template changed.
* SCRAPER_SLOT_MAX_ACTIVE_SIZE 5 MB (Scrapy's default, ~2% of the budget):
  about three untrimmed pages waiting for the parser before downloads back off.
* Governor: budget = the memusage limit; HIGH/PAUSE/LOW at 80/90/60%; it may
  go down to 1 request and comes back up 1 at a time (its top is CONCURRENT_REQUESTS after the cap).
"""

PLT_MAX_CONCURRENT_REQUESTS = 16

MEMUSAGE_LIMIT_MB = 238
MEMUSAGE_WARNING_MB = 200

DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 3 * 1024 * 1024

SCRAPER_SLOT_MAX_ACTIVE_SIZE = 5_000_000

PLT_MEMORY_BUDGET_MB = 238
PLT_GOVERNOR_HIGH = 0.80
PLT_GOVERNOR_PAUSE = 0.90
PLT_GOVERNOR_LOW = 0.60
PLT_GOVERNOR_MIN_CONCURRENCY = 1
PLT_GOVERNOR_RAISE_STEP = 1
