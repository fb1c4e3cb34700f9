"""Settings of the PLT project. Each PLT_ setting is documented in the README.

A memory profile (``-s PROFILE=1gb``, see settings_profiles/) overrides the
budget-bound values here; ``-s`` and spider custom_settings override both.
"""

BOT_NAME = "plt"
SPIDER_MODULES = ["plt.spiders"]
NEWSPIDER_MODULE = "plt.spiders"
COMMANDS_MODULE = "plt.commands"

# The retailer: required. The bundled demo retailer is crawled only when asked
# for, with PLT_EMBEDDED_SHOP=1 and SHOP_URL unset.
SHOP_URL = None
STOCK_API_URL = None
PLT_EMBEDDED_SHOP = False
PLT_EMBEDDED_SHOP_OPTIONS: dict = {}

ROBOTSTXT_OBEY = False
USER_AGENT = "plt (+https://example.invalid/plt)"
# How hard to hit the retailer is the user's choice: Scrapy's polite defaults,
# CONCURRENT_REQUESTS 16 and CONCURRENT_REQUESTS_PER_DOMAIN 8, stay unless set.
# The memory profile only caps them (PLT_MAX_CONCURRENT_REQUESTS; 0 = no cap).
PLT_MAX_CONCURRENT_REQUESTS = 0
# Scrapy starts CONCURRENT_ITEMS worker tasks for every response's output;
# a callback here yields at most one item, so one worker does.
CONCURRENT_ITEMS = 1
DOWNLOAD_TIMEOUT = 60
RETRY_TIMES = 3
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
LOG_LEVEL = "INFO"

# Memory profile: settings_profiles/profile_<PROFILE>.py (256mb, 512mb, 1gb,
# 2gb), applied at priority 25: over this file, under spider custom_settings
# and -s. "none" = no profile.
PROFILE = "1gb"

ADDONS = {
    "plt.profiles.ProfileAddon": 0,  # first, so later add-ons see its values
    "plt.shopaddon.EmbeddedShopAddon": 10,
    "plt.job.feed.JobFeedAddon": 20,
    # After JobFeedAddon: replaces the job feed with the worker's own file.
    "plt.distributed.addon.DistributedAddon": 30,
}

# Distributed mode (plt.distributed): workers share one crawl in Redis.
PLT_DISTRIBUTED = False
REDIS_URL = None  # redis://host:port/db
PLT_REDIS_JOB = None  # the crawl's name in Redis; default: the JOBDIR's name
PLT_WORKER_NAME = None  # default: <host>-<pid>
PLT_LEASE_SECONDS = 30  # renewed every third of it
PLT_REDIS_SEED = True  # False: this worker waits for another's seed
PLT_REDIS_SEED_WAIT = 300
PLT_REDIS_POLL_INTERVAL = 0.5
PLT_REDIS_MERGE = True
PLT_REDIS_FINISHED_TTL = 7 * 24 * 3600  # seconds a finished crawl's keys are kept; 0: kept
PLT_REDIS_LEASE_BATCH = 8  # requests leased per call
PLT_REDIS_OUTAGE_SECONDS = 60  # how long a worker waits for Redis to come back

# Job state: frontier, seen set, leases and partial items in the job store
# (plt.job.store): SQLite in JOBDIR unless PLT_JOB_STORE names another (the
# distributed add-on names the Redis one).
SCHEDULER = "plt.job.scheduler.JobScheduler"
PLT_JOB_RESET = False
# The ledger (plt.job): runs a request may fail in before it is given up, the
# item field that identifies an item, and whether to try given-up requests again.
PLT_JOB_MAX_ATTEMPTS = 3
PLT_JOB_ITEM_ID_FIELD = "product_id"
PLT_JOB_RETRY_FAILED = False
PLT_JOB_FSYNC = True  # the items file is fsynced before each export is recorded
PLT_RETRY_AFTER_MAX = 60  # seconds of Retry-After waited for within a run
PLT_RETRY_FORBIDDEN_TIMES = 1  # retries of a 401/403 within a run (anti-bot walls)

DOWNLOADER_MIDDLEWARES = {
    # Wire side of HttpCompressionMiddleware (590): trims product pages.
    "plt.middlewares.headonly.HeadOnlyMiddleware": 595,
    # Before RetryMiddleware (550) and RedirectMiddleware (600) see a response.
    "plt.middlewares.retryafter.RetryAfterMiddleware": 560,
    # Between RetryAfter and RetryMiddleware: 401/403 get their own, smaller budget.
    "plt.middlewares.forbidden.ForbiddenRetryMiddleware": 555,
    "plt.middlewares.redirects.RedirectGuard": 650,
}
PLT_HEAD_ONLY_ENABLED = True
# End a product page's download once its block is in (see README, "Encodings and transfers").
PLT_HEAD_STOP_TRANSFER = True
# A product page still without its marker after this much decoded output is decoded
# whole once it has arrived, instead of being held while it downloads.
PLT_HEAD_STREAM_MAX_BYTES = 256 * 1024

SPIDER_MIDDLEWARES = {
    # Outermost: settles a lease after everything else has seen the output.
    "plt.job.lease.LeaseMiddleware": 10,
    "plt.middlewares.deltafetch.ExportedDeltaFetch": 100,
}
DELTAFETCH_ENABLED = True

ITEM_PIPELINES = {
    "plt.job.pipeline.ExactlyOncePipeline": 900,
}

EXTENSIONS = {
    # Scrapy's SpiderState pickles spider.state into JOBDIR; a job directory
    # must never be able to run code when it is loaded.
    "scrapy.extensions.spiderstate.SpiderState": None,
    "plt.extensions.governor.MemoryGovernor": 550,
    "plt.extensions.memreport.MemoryReport": 600,
    "plt.extensions.progress.Progress": 610,
    "plt.extensions.runlog.RunLog": 900,
    "plt.extensions.summary.JobSummary": 1000,
}

# Memory governor; Scrapy's MemoryUsage stays on as the hard stop.
PLT_GOVERNOR_ENABLED = True
PLT_MEMORY_BUDGET_MB = 0
PLT_GOVERNOR_INTERVAL = 1.0
PLT_GOVERNOR_HIGH = 0.80
PLT_GOVERNOR_PAUSE = 0.90
PLT_GOVERNOR_LOW = 0.60
PLT_GOVERNOR_MIN_CONCURRENCY = 1
PLT_GOVERNOR_RAISE_STEP = 1
PLT_GOVERNOR_RAISE_TICKS = 3
PLT_GOVERNOR_COOLDOWN = 3.0
PLT_GOVERNOR_MAX_PAUSE = 60.0
PLT_GOVERNOR_TRIM_INTERVAL = 10.0
PLT_GOVERNOR_GC = True
PLT_GOVERNOR_CGROUP_ROOT = "/sys/fs/cgroup"

# Memory report: memory-report.json/.txt, memory-samples.jsonl and memory.svg in JOBDIR.
PLT_MEMREPORT_ENABLED = True
PLT_MEMREPORT_INTERVAL = 60
PLT_MEMREPORT_SAMPLE_INTERVAL = 2
PLT_MEMREPORT_MAX_SAMPLES = 2000
PLT_MEMREPORT_DIR = None
PLT_MEMCHART = True  # draw memory.svg at close, in a child process

# Progress: a bar on a terminal, log lines elsewhere (auto | bar | log | off).
PLT_PROGRESS = "auto"
PLT_PROGRESS_INTERVAL = 30
PLT_PROGRESS_WINDOW = 60

FEED_EXPORTERS = {
    "jsonl": "plt.job.exporter.UjsonLinesExporter",
    "jsonlines": "plt.job.exporter.UjsonLinesExporter",
}
FEED_EXPORT_ENCODING = "utf-8"

SPIDER_CONTRACTS = {
    "plt.contracts.ShopUrlContract": 1,
    "plt.contracts.StockUrlContract": 1,
    "plt.contracts.WithPendingItemContract": 5,
    "plt.contracts.ListingPageContract": 10,
    "plt.contracts.PendingItemContract": 10,
}
