"""Distributed mode: many ``scrapy crawl product`` workers share one crawl in Redis.

Switched on with ``-s PLT_DISTRIBUTED=True -s REDIS_URL=redis://host:port/db``
(the add-on plt.distributed.addon.DistributedAddon must be in ADDONS).

* store, lua: the crawl's keys in Redis and the atomic steps on them
  (enqueue-unless-seen, lease, settle, export, renew, requeue on expiry).
* state: the Redis job store (plt.job.store's interface), PLT_JOB_STORE in this mode.
* ledger, account: the ledger's record in Redis, and the items by fate.
* connection: a Redis client that rides out an outage.
* keeper: renews leases, requeues those of dead workers, keeps idle workers
  open while the crawl has requests anywhere.
* merge: the job's items.jsonl from the workers' files, each product once,
  checked against the product ids exported in Redis and the crawl's retailer.
* identity: the crawl's identity (generation, start, retailer), recorded when
  the first worker joins it; a worker that finds it gone or changed stops.
* checks: before anything is fetched, Redis' eviction policy and persistence,
  and the worker's retailer.
"""
