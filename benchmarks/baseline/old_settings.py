"""Settings of the old spider: Scrapy's defaults but for the lines below.

Used through ``SCRAPY_SETTINGS_MODULE=old_settings`` with this directory on
PYTHONPATH, so that none of PLT's settings, middlewares, scheduler or
extensions take part in the baseline run.
"""

BOT_NAME = "old_product"

# The same 16 download slots against the one retailer host as PLT is given.
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 16

ITEM_PIPELINES = {"old_spider.StockJsonPipeline": 300}

# Scrapy's default is DEBUG, which logs every request and every item. PLT logs at
# INFO; the baseline does the same so that logging is no part of the difference.
LOG_LEVEL = "INFO"

# Idle loopback servers that PLT turns off too; neither is part of what is measured.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
