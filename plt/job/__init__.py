"""The job layer: what becomes of each request of a job, whatever the spider.

It knows requests, leases and item ids (the item field named by
``PLT_JOB_ITEM_ID_FIELD``), never what the items are.
"""
